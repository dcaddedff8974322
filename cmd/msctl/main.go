// Command msctl scaffolds, runs, contract-tests and watches a microservice
// system. Everything lives in internal/cli; main only wires the exit code.
package main

import (
	"os"

	"github.com/msctl/msctl/internal/cli"
)

func main() { os.Exit(cli.Main()) }
