package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Webhook targets. A client names the URL, the API calls it: left open, that lets any key
// holder make the API reach what only it can reach (the cloud's metadata service at
// 169.254.169.254, Redis, admin ports on localhost, the private network). So webhooks go only
// to public addresses, unless the operator allows a network (AllowNetworks). The address is
// checked twice: when the job is submitted (the host's every address, so the client learns at
// once), and when the delivery connects (the address actually dialed, so a name that resolves
// to another address by then — DNS rebinding — gains nothing). Redirects are not followed.

// reservedNets are special-purpose blocks that netip's predicates do not cover but that are
// no place for a webhook either.
var reservedNets = []struct {
	net  netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // and the broadcast address
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// nat64 is the well-known NAT64 prefix: its addresses carry an IPv4 address in their last
// 32 bits, which is what they reach.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// nonPublic says what kind of address a is when a webhook may not reach it, or "" when it may.
func nonPublic(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local" // 169.254.0.0/16 holds the cloud metadata services
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	}
	for _, r := range reservedNets {
		if r.net.Contains(a) {
			return r.what
		}
	}
	return ""
}

// errTargetRefused matches every refusal of a webhook address.
var errTargetRefused = errors.New("webhook target refused")

// targetPolicy decides which addresses webhooks may reach.
type targetPolicy struct {
	allow []netip.Prefix
}

// check returns an error matching errTargetRefused when a may not be reached.
func (p targetPolicy) check(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	for _, n := range p.allow {
		if n.Contains(a) {
			return nil
		}
	}
	if what := nonPublic(a); what != "" {
		return fmt.Errorf("%w: %s is a %s address", errTargetRefused, a, what)
	}
	return nil
}

// validateURL checks a submitted webhook URL: http or https, with a host whose every address
// may be reached. lookup resolves host names.
func (p targetPolicy) validateURL(ctx context.Context, raw string, lookup func(context.Context, string) ([]netip.Addr, error)) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return errBadRequest("webhook.url", "must be an absolute http or https URL")
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		addrs, err = lookup(ctx, host)
		if err != nil || len(addrs) == 0 {
			return errBadRequest("webhook.url", "names the host %q, which does not resolve", host)
		}
	}
	for _, a := range addrs {
		if a = a.Unmap().WithZone(""); p.check(a) != nil {
			return errBadRequest("webhook.url", "names a host that resolves to a %s address: webhooks may reach public addresses only, unless the operator allows the network", nonPublic(a))
		}
	}
	return nil
}

// control is a net.Dialer Control hook: it refuses a connection to an address the policy does
// not allow, after name resolution, right before the connect.
func (p targetPolicy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialed address %q", errTargetRefused, address)
	}
	return p.check(ap.Addr())
}

// client returns the HTTP client deliveries use: no proxy (a proxy would make the dialed
// address the proxy's), the policy checked on every connection, no redirects (a receiver
// answers; it does not send us elsewhere), timeout per try.
func (p targetPolicy) client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
