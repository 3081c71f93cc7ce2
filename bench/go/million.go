// million.go - the Go side of skyloft_million: holds N live goroutines, each blocked on a sync.WaitGroup,
// and prints what they cost. skyloft_million runs this as a child process and parses its one output line:
//
//	tasks=N procs=P spawn_s=S rss_bytes=R virt_bytes=V teardown_s=T
//
// rss_bytes and virt_bytes are /proc/self/statm deltas from just before the first spawn to the moment
// every goroutine has started; spawn_s is that interval; teardown_s runs from the release to the moment
// every goroutine has returned. Built with the Go standard library only (no modules).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// statm returns the process's virtual size and resident set in bytes.
func statm() (int64, int64) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "million_go: cannot read /proc/self/statm:", err)
		os.Exit(1)
	}
	f := strings.Fields(string(b))
	page := int64(os.Getpagesize())
	virt, _ := strconv.ParseInt(f[0], 10, 64)
	rss, _ := strconv.ParseInt(f[1], 10, 64)
	return virt * page, rss * page
}

func main() {
	tasks := flag.Int("tasks", 1000000, "live goroutines to hold")
	procs := flag.Int("procs", runtime.NumCPU(), "GOMAXPROCS")
	flag.Parse()
	if *tasks < 1 || *procs < 1 {
		fmt.Fprintln(os.Stderr, "million_go: -tasks and -procs must be >= 1")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)
	n := *tasks

	var release, finished sync.WaitGroup
	release.Add(1)
	finished.Add(n)
	var started int64

	runtime.GC()
	virt0, rss0 := statm()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			release.Wait()
			finished.Done()
		}()
	}
	for atomic.LoadInt64(&started) < int64(n) {
		runtime.Gosched()
	}
	spawn := time.Since(t0)
	virt1, rss1 := statm()

	t1 := time.Now()
	release.Done()
	finished.Wait()
	teardown := time.Since(t1)

	fmt.Printf("tasks=%d procs=%d spawn_s=%.6f rss_bytes=%d virt_bytes=%d teardown_s=%.6f\n", n, *procs,
		spawn.Seconds(), rss1-rss0, virt1-virt0, teardown.Seconds())
}
