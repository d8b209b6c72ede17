// Go peers for heddle's sched benchmarks. Usage: heddlepeers {timers|parkwake} [N]
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
	runtime.GC()
	before := residentKiB()
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
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
	default:
		fmt.Fprintf(os.Stderr, "usage: heddlepeers {timers|parkwake} [N]\n")
		os.Exit(2)
	}
}
