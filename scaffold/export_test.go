package scaffold

// Variant is a golden case as the external tests see it.
type Variant struct {
	Golden string
	Opts   Options
}

// GoldenVariants returns the golden cases, so that the repository-copy
// tests of package scaffold_test compile exactly what the goldens show.
func GoldenVariants() []Variant {
	out := make([]Variant, 0, len(goldenCases))
	for _, c := range goldenCases {
		out = append(out, Variant{Golden: c.name, Opts: c.opts})
	}
	return out
}
