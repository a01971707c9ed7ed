//go:build tools

// Package tools pins the Jaeger command built from this module. It is never
// compiled (build tag "tools"); it only keeps go.mod/go.sum complete.
package tools

import (
	_ "github.com/jaegertracing/jaeger/cmd/jaeger"
)
