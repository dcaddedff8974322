package domain

// Step is where an order's saga stands: the command of that step has been
// sent and its reply is awaited. StepDone means the order is final.
type Step string

// Saga steps. reserve → charge → done is the happy path; refund and release
// are the compensations.
const (
	StepReserve Step = "reserve"
	StepCharge  Step = "charge"
	StepRefund  Step = "refund"
	StepRelease Step = "release"
	StepDone    Step = "done"
)

// Reply is a participant's answer, as the saga sees it.
type Reply string

// Replies the saga reacts to.
const (
	Reserved Reply = "reserved"
	Rejected Reply = "rejected"
	Released Reply = "released"
	Charged  Reply = "charged"
	Declined Reply = "declined"
	Refunded Reply = "refunded"
)

// Transition is what the saga does next.
type Transition struct {
	Next Step
	// Final is the order's new status when Next is StepDone.
	Final string
	// Reason replaces the saga's reason when not empty (why the order is
	// being cancelled).
	Reason string
}

// On returns the transition for reply at step, given the reason the reply
// carries. ok is false for a reply the step does not wait for: a duplicate
// or a late answer to a step the saga already left. Those are ignored.
func On(step Step, reply Reply, replyReason string) (t Transition, ok bool) {
	switch {
	case step == StepReserve && reply == Reserved:
		return Transition{Next: StepCharge}, true
	case step == StepReserve && reply == Rejected:
		return Transition{Next: StepDone, Final: StatusCancelled, Reason: replyReason}, true
	case step == StepCharge && reply == Charged:
		return Transition{Next: StepDone, Final: StatusConfirmed}, true
	case step == StepCharge && reply == Declined:
		return Transition{Next: StepRelease, Reason: replyReason}, true
	case step == StepRefund && reply == Refunded:
		return Transition{Next: StepRelease}, true
	case step == StepRelease && reply == Released:
		return Transition{Next: StepDone, Final: StatusCancelled}, true
	}
	return Transition{}, false
}

// Timeout reasons.
const (
	ReasonReserveTimeout = "stock reservation timed out"
	ReasonChargeTimeout  = "payment timed out"
)

// OnTimeout is what the sweeper does with a saga whose step got no reply in
// time. Below maxAttempts the step's command is sent again (participants are
// idempotent per order). After that the forward steps give up and
// compensate; compensations are retried for as long as it takes.
func OnTimeout(step Step, attempts, maxAttempts int) (t Transition, resend bool) {
	if step == StepDone {
		return Transition{}, false
	}
	if attempts < maxAttempts || step == StepRefund || step == StepRelease {
		return Transition{Next: step}, true
	}
	if step == StepReserve {
		// The reservation may have happened without its reply reaching us.
		return Transition{Next: StepRelease, Reason: ReasonReserveTimeout}, false
	}
	// The charge may have happened: refund it (a void if it did not), then release.
	return Transition{Next: StepRefund, Reason: ReasonChargeTimeout}, false
}
