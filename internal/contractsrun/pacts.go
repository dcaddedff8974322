package contractsrun

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Interaction kinds as a V4 pact file names them.
const (
	KindHTTP    = "Synchronous/HTTP"
	KindMessage = "Asynchronous/Messages"
)

// Pact is what the driver needs from one pact file: who agreed with whom on
// which interactions.
type Pact struct {
	File         string
	Consumer     string
	Provider     string
	Interactions []Interaction
}

// Interaction is one entry of a pact.
type Interaction struct {
	Description string
	Kind        string
	States      []string
}

// Kind summarises a pact's interactions: "http", "message" or "mixed".
func (p Pact) Kind() string {
	var http, msg bool
	for _, in := range p.Interactions {
		if in.Kind == KindMessage {
			msg = true
		} else {
			http = true
		}
	}
	switch {
	case http && msg:
		return "mixed"
	case msg:
		return "message"
	}
	return "http"
}

type pactFile struct {
	Consumer     struct{ Name string } `json:"consumer"`
	Provider     struct{ Name string } `json:"provider"`
	Interactions []struct {
		Type           string `json:"type"`
		Description    string `json:"description"`
		ProviderStates []struct {
			Name string `json:"name"`
		} `json:"providerStates"`
	} `json:"interactions"`
}

// LoadPacts reads every *.json pact file in dir, sorted by consumer then
// provider. A missing directory is no pacts, not an error.
func LoadPacts(dir string) ([]Pact, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list pacts in %s: %w", dir, err)
	}
	var out []Pact
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read pact: %w", err)
		}
		var pf pactFile
		if err := json.Unmarshal(raw, &pf); err != nil {
			return nil, fmt.Errorf("decode pact %s: %w", f, err)
		}
		if pf.Consumer.Name == "" || pf.Provider.Name == "" {
			return nil, fmt.Errorf("pact %s names no consumer or provider", f)
		}
		p := Pact{File: f, Consumer: pf.Consumer.Name, Provider: pf.Provider.Name}
		// Merging message pacts can leave identical copies of an interaction
		// in the file; the verifier selects by description and states, so
		// they are one interaction.
		seen := map[string]bool{}
		for _, in := range pf.Interactions {
			it := Interaction{Description: in.Description, Kind: in.Type}
			for _, s := range in.ProviderStates {
				it.States = append(it.States, s.Name)
			}
			key := in.Type + "\x00" + in.Description + "\x00" + strings.Join(it.States, "\x00")
			if seen[key] {
				continue
			}
			seen[key] = true
			p.Interactions = append(p.Interactions, it)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Consumer != out[j].Consumer {
			return out[i].Consumer < out[j].Consumer
		}
		return out[i].Provider < out[j].Provider
	})
	return out, nil
}

// PactsFor returns the pacts whose provider is provider.
func PactsFor(pacts []Pact, provider string) []Pact {
	var out []Pact
	for _, p := range pacts {
		if p.Provider == provider {
			out = append(out, p)
		}
	}
	return out
}

// CheckStates fails when an interaction of pacts names a provider state the
// provider does not set up. Pact's own verifier only logs a warning for an
// unknown state and carries on, so a state a consumer adds (or renames)
// would otherwise be verified against whatever data happens to be there.
func CheckStates(pacts []Pact, handled func(state string) bool) error {
	var missing []string
	for _, p := range pacts {
		for _, in := range p.Interactions {
			for _, s := range in.States {
				if !handled(s) {
					missing = append(missing, fmt.Sprintf("%q (interaction %q of %s)", s, in.Description, p.Consumer))
				}
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("provider state not handled: %s", strings.Join(missing, ", "))
	}
	return nil
}

// SubtestName is the name a provider test gives the subtest verifying one
// interaction, so that go test's results map back to it. It keeps only
// characters go test leaves alone.
func SubtestName(consumer, description string) string {
	var b strings.Builder
	b.WriteString(clean(consumer))
	b.WriteByte('/')
	b.WriteString(clean(description))
	return b.String()
}

func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
