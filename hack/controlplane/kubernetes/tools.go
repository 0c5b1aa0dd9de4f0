//go:build tools

// Package tools records the control-plane commands this module builds, so that `go mod tidy`
// keeps their dependencies; `scripts/build-control-plane.sh` builds them.
package tools
