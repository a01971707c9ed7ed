// promql-check parses PromQL expressions with Prometheus' own parser, so that the chart's
// alerting rules are checked by the code Prometheus itself runs. See scripts/build-go-tools.sh.
//
// Usage: promql-check < exprs.json
// stdin is a JSON array of expressions; stdout is a JSON array of {"expr", "type"} or
// {"expr", "error"}, one per expression, in order. Exit status 1 when any expression fails to
// parse, 2 when stdin is not a JSON array of strings.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Expr  string `json:"expr"`
	Type  string `json:"type,omitempty"`
	Error string `json:"error,omitempty"`
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promql-check: stdin is not a JSON array of strings:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(exprs))
	failed := false
	for _, expr := range exprs {
		r := result{Expr: expr}
		if node, err := parser.ParseExpr(expr); err != nil {
			r.Error = err.Error()
			failed = true
		} else {
			r.Type = string(node.Type())
		}
		out = append(out, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "promql-check:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
