// heddle example: `http soak`, the server under a mixed client population
// for a long while, then checked for leaks.
//
// The server runs on one Loop (the main thread) with a 1 s request timeout,
// so that stalled clients are disconnected often; the clients are tasks of
// a second Loop on their own thread. Each client task opens connections of
// one kind, one after another, until the run ends:
//   keep-alive    up to 100 requests on a connection (some end it with
//                 Connection: close), each response checked
//   pipelined     5-50 batches of 2-40 requests, each in one write, responses checked
//                 in order
//   short-lived   connect, one request (HTTP/1.1, Connection: close or
//                 HTTP/1.0), close
//   malformed     0-3 good requests then a bad one in one write: their
//                 answers, 400, then the server's close
//   oversized     a header section over 8 KiB: 431, then the server's close
//   slowloris     half a request, a request trickled a byte at a time, or
//                 an idle keep-alive connection: the server must disconnect
//                 it after the request timeout (not before half of it, not
//                 more than 4 s after it)
//   reset         a batch of requests, part of the responses read, then an
//                 abortive close (SO_LINGER {1, 0}: RST) mid-response
// Every well-formed request must get its exact response (200 "Hello,
// World!" or 404 "Not Found\n"); anything else is a failure.
//
// After the clients have left, the run passes only if: no client failed;
// every well-formed request was answered; the server's connection tasks are
// back to zero; the resident set is within 10% of the baseline taken after
// warm-up (see soak.cpp for why then); and the descriptor count is back to
// its value before the clients started, and after teardown to its value at
// start. A summary names each check; the exit status is 0 only if all pass.
#pragma once

namespace http_example {

struct SoakOptions {
  double seconds = 600;  // how long the clients run
};

// Runs the soak, prints progress and the summary; returns the process exit
// status (0 when every check passed, 1 otherwise).
int run_soak(const SoakOptions& options);

}  // namespace http_example
