package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/auth"
)

// keysCommand manages API keys in the key store directly: the SQLite file of `serve`
// (<data-dir>/keys.db) or the Redis of `api` (--redis-url). A revocation holds at once on
// every server using the store.
type keysCommand struct{ m *Main }

// keysStoreConfig says which store the keys subcommands open.
type keysStoreConfig struct {
	DataDir  string
	RedisURL string
}

func (c *keysStoreConfig) define(f *flagSet) {
	f.String(&c.DataDir, "data-dir", "~/.neovratz", "data directory of 'neovratz serve', whose keys.db holds the keys", nil)
	f.String(&c.RedisURL, "redis-url", "", "Redis URL of 'neovratz api'; when set, the keys in that Redis", checkRedisURL)
}

const keysUsage = `Usage: neovratz keys <create|list|revoke> [flags]

Manages API keys in the key store of 'neovratz serve' (<data-dir>/keys.db) or, with
--redis-url, of 'neovratz api'. Run 'neovratz keys <subcommand> -h' for its flags.

	create   create a key and print its token (shown only once)
	list     list the keys (never their secrets)
	revoke   revoke a key by id: it stops working at once on every server
`

func (c *keysCommand) Usage(w io.Writer) { fmt.Fprint(w, keysUsage) }

func (c *keysCommand) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("want a subcommand: create, list or revoke")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return errHelp
	case "create":
		return c.create(ctx, args[1:])
	case "list":
		return c.list(ctx, args[1:])
	case "revoke":
		return c.revoke(ctx, args[1:])
	}
	return usageErrorf("unknown subcommand %q (want create, list or revoke)", args[0])
}

// open opens the store the flags name.
func (c *keysCommand) open(ctx context.Context, cfg keysStoreConfig) (*auth.Keys, func(), error) {
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, nil, usageErrorf("--redis-url: %v", err)
		}
		rdb := redis.NewClient(opts)
		if err := rdb.Ping(ctx).Err(); err != nil {
			rdb.Close()
			return nil, nil, fmt.Errorf("redis at %s: %w", opts.Addr, err)
		}
		return auth.NewKeys(auth.NewRedisStore(rdb, keyPrefix), nil), func() { rdb.Close() }, nil
	}
	dir, err := expandHome(cfg.DataDir, c.m.homeDir)
	if err != nil {
		return nil, nil, usageErrorf("--data-dir: %v", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	s, err := keyStore(ctx, &openedBroker{}, dir)
	if err != nil {
		return nil, nil, err
	}
	return auth.NewKeys(s, nil), func() { s.Close() }, nil
}

func (c *keysCommand) create(ctx context.Context, args []string) error {
	var store keysStoreConfig
	var name, scopes, models string
	var expires time.Duration
	var limits auth.Limits
	f := newFlagSet("keys create", "--name NAME [flags]", "Creates an API key and prints its token, which is shown only this once.")
	store.define(f)
	f.String(&name, "name", "", "what the key is for; required", nil)
	f.String(&scopes, "scopes", "inference", "comma-separated scopes: inference, jobs, admin, worker, metrics", nil)
	f.String(&models, "models", "", "comma-separated models the key may use (empty: all)", nil)
	f.Duration(&expires, "expires-in", 0, "the key stops working after this long (default: never)")
	f.showDefault("expires-in", "never")
	f.Int(&limits.RequestsPerMinute, "requests-per-minute", 0, "requests per minute (0: unlimited)")
	f.Int(&limits.TokensPerMinute, "tokens-per-minute", 0, "tokens per minute (0: unlimited)")
	f.Int(&limits.ConcurrentJobs, "concurrent-jobs", 0, "jobs running or queued at once (0: unlimited)")
	if err := f.parse(args, c.m.getenv); err != nil {
		return c.helpOr(f, err)
	}
	spec := auth.Spec{Name: name, Models: splitList(models), Limits: limits}
	for _, s := range splitList(scopes) {
		spec.Scopes = append(spec.Scopes, auth.Scope(s))
	}
	if expires > 0 {
		spec.ExpiresAt = time.Now().Add(expires)
	}
	if err := spec.Validate(time.Now()); err != nil {
		return usageErrorf("%v", err)
	}
	ks, closeStore, err := c.open(ctx, store)
	if err != nil {
		return err
	}
	defer closeStore()
	k, token, err := ks.Create(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.m.Stdout, "created key %s (%s) with scopes %s; its token, shown only this once:\n%s\n",
		k.ID, k.Name, joinScopes(k.Scopes), token)
	return nil
}

func (c *keysCommand) list(ctx context.Context, args []string) error {
	var store keysStoreConfig
	f := newFlagSet("keys list", "[flags]", "Lists the API keys: id, name, scopes, models, limits, expiry and revocation; never secrets.")
	store.define(f)
	if err := f.parse(args, c.m.getenv); err != nil {
		return c.helpOr(f, err)
	}
	ks, closeStore, err := c.open(ctx, store)
	if err != nil {
		return err
	}
	defer closeStore()
	keys, err := ks.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.m.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tMODELS\tRPM\tTPM\tJOBS\tCREATED\tEXPIRES\tREVOKED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, joinScopes(k.Scopes), orAll(k.Models),
			orDash(k.Limits.RequestsPerMinute), orDash(k.Limits.TokensPerMinute), orDash(k.Limits.ConcurrentJobs),
			k.CreatedAt.Format(time.RFC3339), timeOrDash(k.ExpiresAt), timeOrDash(k.RevokedAt))
	}
	return tw.Flush()
}

func (c *keysCommand) revoke(ctx context.Context, args []string) error {
	var store keysStoreConfig
	f := newFlagSet("keys revoke", "ID [flags]", "Revokes the key with ID: it stops working at once on every server that uses the store.")
	store.define(f)
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := f.parse(args, c.m.getenv); err != nil {
		return c.helpOr(f, err)
	}
	if id == "" {
		return usageErrorf("want the id of the key to revoke")
	}
	ks, closeStore, err := c.open(ctx, store)
	if err != nil {
		return err
	}
	defer closeStore()
	k, err := ks.Revoke(ctx, id)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	fmt.Fprintf(c.m.Stdout, "revoked key %s (%s) at %s\n", k.ID, k.Name, k.RevokedAt.Format(time.RFC3339))
	return nil
}

// helpOr prints a subcommand's usage for -h (Main.Run prints only the command's).
func (c *keysCommand) helpOr(f *flagSet, err error) error {
	if err == errHelp {
		f.Usage(c.m.Stdout)
		return nil
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinScopes(ss []auth.Scope) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}

func orAll(ms []string) string {
	if len(ms) == 0 {
		return "all"
	}
	return strings.Join(ms, ",")
}

func orDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}
