package domain

import "testing"

func TestOn(t *testing.T) {
	tests := []struct {
		step   Step
		reply  Reply
		want   Transition
		wantOK bool
	}{
		{StepReserve, Reserved, Transition{Next: StepCharge}, true},
		{StepReserve, Rejected, Transition{Next: StepDone, Final: StatusCancelled, Reason: "why"}, true},
		{StepCharge, Charged, Transition{Next: StepDone, Final: StatusConfirmed}, true},
		{StepCharge, Declined, Transition{Next: StepRelease, Reason: "why"}, true},
		{StepRefund, Refunded, Transition{Next: StepRelease}, true},
		{StepRelease, Released, Transition{Next: StepDone, Final: StatusCancelled}, true},
		// duplicates and late replies are ignored
		{StepCharge, Reserved, Transition{}, false},
		{StepDone, Charged, Transition{}, false},
		{StepRefund, Charged, Transition{}, false},
		{StepRelease, Declined, Transition{}, false},
	}
	for _, tt := range tests {
		got, ok := On(tt.step, tt.reply, "why")
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("On(%s, %s) = %+v, %v; want %+v, %v", tt.step, tt.reply, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestOnTimeout(t *testing.T) {
	tests := []struct {
		step       Step
		attempts   int
		want       Transition
		wantResend bool
	}{
		{StepReserve, 1, Transition{Next: StepReserve}, true},
		{StepReserve, 3, Transition{Next: StepRelease, Reason: ReasonReserveTimeout}, false},
		{StepCharge, 2, Transition{Next: StepCharge}, true},
		{StepCharge, 3, Transition{Next: StepRefund, Reason: ReasonChargeTimeout}, false},
		{StepRefund, 30, Transition{Next: StepRefund}, true},
		{StepRelease, 30, Transition{Next: StepRelease}, true},
		{StepDone, 1, Transition{}, false},
	}
	for _, tt := range tests {
		got, resend := OnTimeout(tt.step, tt.attempts, 3)
		if resend != tt.wantResend || got != tt.want {
			t.Errorf("OnTimeout(%s, %d) = %+v, %v; want %+v, %v", tt.step, tt.attempts, got, resend, tt.want, tt.wantResend)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := []Item{{ProductID: "p", Quantity: 1}}
	tests := []struct {
		name  string
		user  string
		items []Item
		card  string
		valid bool
	}{
		{"ok", "u", ok, "4242424242424242", true},
		{"no user", "", ok, "4242424242424242", false},
		{"no items", "u", nil, "4242424242424242", false},
		{"zero quantity", "u", []Item{{ProductID: "p"}}, "4242424242424242", false},
		{"no product", "u", []Item{{Quantity: 1}}, "4242424242424242", false},
		{"short card", "u", ok, "4242", false},
		{"letters in card", "u", ok, "4242x24242424242", false},
	}
	for _, tt := range tests {
		if err := Validate(tt.user, tt.items, tt.card, ""); (err == nil) != tt.valid {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}
