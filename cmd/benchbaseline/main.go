// Command benchbaseline holds the helpers scripts/bench.sh needs beside the
// syncer itself:
//
//	benchbaseline download  the plain-HTTP-client baseline: the same Actions
//	                        pages a backfill reads, written to disk
//	benchbaseline seed      registers many simulator accounts and stores the
//	                        watermarks a finished sync would have left, so a
//	                        steady-state cycle can be timed
//	benchbaseline profile   runs a backfill in-process with CPU and heap
//	                        profiles (the syncer binary has no pprof hooks)
//
// Each prints one JSON object on stdout. It is a benchmark tool, not part of
// the product: it talks to the simulator and to a throwaway database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchbaseline:", err)
		os.Exit(1)
	}
}

const usage = `usage: benchbaseline <download|seed|profile> [flags]  (-h for each)`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "download":
		return cmdDownload(ctx, args[1:], stdout, stderr)
	case "seed":
		return cmdSeed(ctx, args[1:], stdout, stderr)
	case "profile":
		return cmdProfile(ctx, args[1:], stdout, stderr)
	}
	return errors.New(usage)
}
