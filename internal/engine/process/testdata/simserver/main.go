// Command simserver is the OpenAI-speaking program the managed-process tests build and run: a
// whole neovratz (embedded broker, HTTP API, a worker on the sim engine) on one port, so the
// process engine is tested against a real server process it can start, kill and restart.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/worker"
	"github.com/neovratz/neovratz/internal/worker/workertest"
)

func main() {
	port := flag.Int("port", 0, "port to listen on")
	model := flag.String("model", "sim", "model name to serve")
	tokens := flag.Int("tokens", 16, "tokens per answer")
	itl := flag.Duration("itl", 0, "time between tokens")
	pidfile := flag.String("pidfile", "", "file to write the process id to once serving")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "simserver")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	s, err := workertest.Start(ctx, ln, workertest.Options{Dir: dir, Sim: sim.Config{Tokens: *tokens, InterTokenLatency: *itl},
		Models: []worker.Model{{Name: *model, Kind: worker.KindText, Engine: "sim", Slots: 8}}})
	if err != nil {
		log.Fatal(err)
	}
	if *pidfile != "" {
		if err := os.WriteFile(*pidfile, fmt.Appendf(nil, "%d", os.Getpid()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("simserver listening on", ln.Addr())
	<-ctx.Done()
	fmt.Println("simserver stopping")
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
