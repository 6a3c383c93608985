// Package faulttest proves ehgate under faults, load and bad input. It holds no production
// code: its tests drive the public API of package connector against package platformtest
// (real HTTPS on loopback, real signatures, real files) and check
//
//   - the fault matrix (matrix_test.go): every fault kind of platformtest × every service
//     (STS, insurability, ETK, writes) × the primary site or every site, each with the
//     behaviour a vendor may rely on. The default run (TestFaults) keeps one cell per
//     distinct behaviour; `go test ./faulttest -run TestMatrix -matrix` runs all 72 cells and
//     `-update` rewrites the table in docs/faults.md from that run. Pass or fail is decided by
//     outcomes, never by speed: generous attempt timeouts, slowness faults cut by the test's
//     transport at the faulted endpoints only, no cell retried;
//   - the soak (soak_test.go): 200 concurrent callers while faults change every second, then
//     no write lost or delivered twice, no error for a patient the store held, no goroutine
//     left behind and a bounded heap; `-soak 60s` runs longer than the 15 s default, with the
//     fault timeline of `-soak-seed` (default 1);
//   - security (security_test.go): TLS 1.2 minimum, certificate verification, no secret or
//     personal data in logs at info and above, signature wrapping and replayed timestamps
//     rejected, oversized and slow answers cut off.
package faulttest
