// Command coredns is CoreDNS v1.15.0 with only the plugins a cluster's DNS needs.
//
// Upstream's main imports github.com/coredns/coredns/core/plugin, which links every plugin
// (the cloud DNS providers' SDKs among them); importing only the plugins the project's
// Corefile names keeps the build a fraction of that. The directive order stays upstream's
// (dnsserver.Directives): a plugin that is not linked is simply unknown to a Corefile.
// See scripts/build-go-tools.sh.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() {
	coremain.Run()
}
