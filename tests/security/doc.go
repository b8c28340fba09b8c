// Package security is the attack suite of issue 13: real ferry processes
// (package internal/ferrytest), real HTTP and gRPC, every probe an attacker
// on the network or a web page in the user's browser would try, each
// asserted refused with nothing outside the test directory read or
// changed; then every legitimate operation of the README with valid
// tokens; and a job end to end between separate processes over TLS and
// mutual TLS.
package security
