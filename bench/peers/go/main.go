// Go peers for heddle's sched benchmarks.
// Usage: heddlepeers {timers|parkwake|parkchain|fib|wake} [N]
//   fib   fib(27), a goroutine per call (both children, then a WaitGroup),
//         GOMAXPROCS=2: ms per fib(27)
//   wake  two goroutines ping-pong over unbuffered channels, GOMAXPROCS=2,
//         each locked to an OS thread of its own (runtime.LockOSThread) and,
//         as go_unlocked, not locked (the scheduler may then put both on
//         one thread): ns per round trip
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func reps() int {
	if r, err := strconv.Atoi(os.Getenv("REPS")); err == nil && r > 0 {
		return r
	}
	return 5
}

func median(values []float64) float64 {
	sort.Float64s(values)
	n := len(values)
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

func report(name, unit string, measure func() float64) {
	var values []float64
	for i := 0; i < reps(); i++ {
		values = append(values, measure())
	}
	fmt.Printf("%s: %.1f %s\n", name, median(values), unit)
}

func residentKiB() int64 {
	file, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line[len("VmRSS:"):])
			value, _ := strconv.ParseInt(fields[0], 10, 64)
			return value
		}
	}
	return -1
}

// Arm a timer and stop it before it fires: ns per AfterFunc + Stop.
func timerChurn(n int) float64 {
	start := time.Now()
	for i := 0; i < n; i++ {
		t := time.AfterFunc(time.Hour, func() {})
		t.Stop()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// n goroutines blocked on one channel, then all released: ns per goroutine
// (spawn, park, wake, finish) and resident bytes per parked goroutine.
func parkWake(n int) (float64, float64) {
	return parkAll(n, func(release chan struct{}, started *sync.WaitGroup) {
		started.Done()
		<-release
	})
}

// parkAll starts n goroutines that each run park (which calls started.Done
// once parked, or about to be, and returns once release is closed), measures
// resident memory when all have started, releases them and waits: ns per
// goroutine (spawn, park, wake, finish) and resident bytes per parked one.
func parkAll(n int, park func(release chan struct{}, started *sync.WaitGroup)) (float64, float64) {
	runtime.GC()
	before := residentKiB()
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			park(release, &started)
			done.Done()
		}()
	}
	started.Wait()
	during := residentKiB()
	close(release)
	done.Wait()
	elapsed := float64(time.Since(start).Nanoseconds()) / float64(n)
	return elapsed, float64(during-before) * 1024 / float64(n)
}

// memory_per_parked_task: n goroutines, each parked on a channel at the
// end of a call chain three functions deep (as heddle's and the other
// peers' tasks are): resident bytes per parked goroutine.
//
//go:noinline
func chainC(release chan struct{}, started *sync.WaitGroup) int {
	var locals [64]byte
	locals[0] = 1
	started.Done()
	<-release
	return int(locals[0])
}

//go:noinline
func chainB(release chan struct{}, started *sync.WaitGroup) int {
	return chainC(release, started) + 1
}

//go:noinline
func chainA(release chan struct{}, started *sync.WaitGroup) int {
	return chainB(release, started) + 1
}

func parkedChainMemory(n int) float64 {
	_, memory := parkAll(n, func(release chan struct{}, started *sync.WaitGroup) { chainA(release, started) })
	return memory
}

func fib(n int) int {
	if n < 2 {
		return n
	}
	var a, b int
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { a = fib(n - 1); wg.Done() }()
	go func() { b = fib(n - 2); wg.Done() }()
	wg.Wait()
	return a + b
}

func fibTree() float64 {
	start := time.Now()
	if fib(27) != 196418 {
		fmt.Fprintln(os.Stderr, "go: fib(27) gave the wrong sum")
		os.Exit(1)
	}
	return float64(time.Since(start).Nanoseconds()) / 1e6
}

// ns per round trip between two goroutines, each locked to its own OS
// thread when lock is set.
func pingPong(rounds int, lock bool) float64 {
	ping := make(chan int)
	pong := make(chan int)
	done := make(chan struct{})
	go func() {
		if lock {
			runtime.LockOSThread()
		}
		for v := range ping {
			pong <- v
		}
		close(done)
	}()
	result := make(chan time.Duration)
	go func() {
		if lock {
			runtime.LockOSThread()
		}
		start := time.Now()
		for i := 0; i < rounds; i++ {
			ping <- i
			<-pong
		}
		result <- time.Since(start)
	}()
	elapsed := <-result
	close(ping)
	<-done
	return float64(elapsed.Nanoseconds()) / float64(rounds)
}

func main() {
	mode := "timers"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	n := 1000000
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	runtime.GOMAXPROCS(1)
	switch mode {
	case "timers":
		report("go_timer_afterfunc_stop", "ns/op", func() float64 { return timerChurn(n) })
	case "parkwake":
		// Memory from the first run only: later runs reuse the freed stacks.
		var times []float64
		var memory float64
		for i := 0; i < 3; i++ {
			t, m := parkWake(n)
			times = append(times, t)
			if i == 0 {
				memory = m
			}
		}
		fmt.Printf("go_park_wake_1m: %.1f ns/task\n", median(times))
		fmt.Printf("go_park_wake_1m_memory: %.0f bytes/task\n", memory)
	case "parkchain":
		// One run: a fresh process's first million goroutines.
		fmt.Printf("go_parked_chain_1m_memory: %.0f bytes/task\n", parkedChainMemory(n))
	case "fib":
		runtime.GOMAXPROCS(2)
		fibTree() // warm-up
		report("go_fib_tree_P2", "ms", fibTree)
	case "wake":
		runtime.GOMAXPROCS(2)
		const rounds = 100000
		pingPong(1000, true)
		report("go_wake_cross_thread_locked", "ns", func() float64 { return pingPong(rounds, true) })
		report("go_wake_cross_thread_unlocked", "ns", func() float64 { return pingPong(rounds, false) })
	default:
		fmt.Fprintf(os.Stderr, "usage: heddlepeers {timers|parkwake|parkchain|fib|wake} [N]\n")
		os.Exit(2)
	}
}
