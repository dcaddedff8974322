package chaos

import (
	"math/rand/v2"

	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

// errorToxic is the toxic of --error-rate: it closes the connection at a
// chunk with probability Rate. toxiproxy's reset_peer with a toxicity
// draws once per connection, so on the kept-alive connections of a
// client's pool the share of failing requests would decay to nothing as
// the pool keeps only the connections that drew no fault; drawing per
// chunk (a request, on an HTTP connection) keeps it near Rate.
type errorToxic struct {
	Rate float64 `json:"rate"`
}

const errorToxicType = "msctl_error"

func init() {
	toxics.Register(errorToxicType, new(errorToxic))
	// Some toxics (bandwidth) log through zerolog's global logger, at trace
	// level on every interruption, to stderr: the agent's output. Nothing of
	// ours logs through zerolog; silence its global logger.
	zlog.Logger = zerolog.Nop()
}

// Pipe implements toxics.Toxic.
func (t *errorToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil || rand.Float64() < t.Rate {
				stub.Close()
				return
			}
			stub.Output <- c
		}
	}
}
