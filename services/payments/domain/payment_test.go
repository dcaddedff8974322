package domain

import "testing"

func TestAuthorize(t *testing.T) {
	tests := []struct {
		card   string
		amount int64
		want   string
	}{
		{"4242424242424242", 100, StatusCharged},
		{CardDeclined, 100, StatusDeclined},
		{CardProcessingError, 100, StatusFailed},
		{"4242", 100, StatusDeclined},
		{"42424242424242x2", 100, StatusDeclined},
		{"4242424242424242", 0, StatusDeclined},
	}
	for _, tt := range tests {
		if got := Authorize(tt.card, tt.amount); got.Status != tt.want {
			t.Errorf("Authorize(%s, %d) = %+v, want %s", tt.card, tt.amount, got, tt.want)
		}
	}
	if Last4("4242424242421234") != "1234" {
		t.Error("last4")
	}
}
