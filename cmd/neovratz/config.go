package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"
	"github.com/redis/go-redis/v9"
)

// envPrefix prefixes the environment variable of every flag: --redis-url is NEOVRATZ_REDIS_URL.
const envPrefix = "NEOVRATZ"

// errHelp is returned by a command asked for its usage (-h, --help).
var errHelp = errors.New("help requested")

// usageError is a bad command line, environment variable or config file: Main.Run reports it
// as one line and exits with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// envVar returns the environment variable that sets flag name, with the same rule as ff:
// upper case, '-' and '.' become '_', prefixed with NEOVRATZ_.
func envVar(name string) string {
	return envPrefix + "_" + strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(strings.ToUpper(name))
}

// flagSet is a command's flags, with the help text and layered parsing every command shares.
type flagSet struct {
	fs       *flag.FlagSet
	name     string // command name
	synopsis string // what follows "neovratz <name>" in the usage line
	about    string // what the command does, shown above the flags
	shown    map[string]string
	// failed records the last value a flag refused, so every layer reports it the same way
	// (the flag package formats its own errors with %v, which loses the details).
	failed *valueError
	// sections are top-level keys of the config file that are not flags: the command reads
	// them itself (the worker's models list), so the flag layer skips them.
	sections map[string]bool
}

// Section declares a top-level key of the config file that the command reads itself.
func (f *flagSet) Section(name string) {
	if f.sections == nil {
		f.sections = map[string]bool{}
	}
	f.sections[name] = true
}

func newFlagSet(name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet("neovratz "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are written by Main.Run
	fs.Usage = func() {}
	return &flagSet{fs: fs, name: name, synopsis: synopsis, about: about, shown: map[string]string{}}
}

// valueError is a value a flag refused.
type valueError struct {
	flag, value string
	source      string // "" for the command line, "from NEOVRATZ_…", "in config file …"
	err         error
}

func (e *valueError) Error() string {
	if e.source == "" {
		return fmt.Sprintf("invalid value %q for --%s: %v", e.value, e.flag, e.err)
	}
	return fmt.Sprintf("invalid value %q for --%s %s: %v", e.value, e.flag, e.source, e.err)
}

// value is a flag.Value made of functions; every flag of the program is one, so the messages
// for bad values are ours in every layer.
type value struct {
	fs     *flagSet
	name   string
	set    func(string) error
	get    func() string
	isBool bool
}

func (v *value) Set(s string) error {
	if err := v.set(s); err != nil {
		e := &valueError{flag: v.name, value: s, err: err}
		v.fs.failed = e
		return e
	}
	return nil
}

func (v *value) String() string {
	if v == nil || v.get == nil { // the flag package calls String on a zero value
		return ""
	}
	return v.get()
}

func (v *value) IsBoolFlag() bool { return v.isBool }

func (f *flagSet) define(name, usage string, set func(string) error, get func() string, isBool bool) {
	f.fs.Var(&value{fs: f, name: name, set: set, get: get, isBool: isBool}, name, usage)
}

// showDefault sets the default shown in the usage text where the flag's own differs from what
// it means (for example a default computed from another flag).
func (f *flagSet) showDefault(name, text string) { f.shown[name] = text }

// String defines a string flag; check, when not nil, validates each value.
func (f *flagSet) String(p *string, name, def, usage string, check func(string) error) {
	*p = def
	f.define(name, usage, func(s string) error {
		if check != nil {
			if err := check(s); err != nil {
				return err
			}
		}
		*p = s
		return nil
	}, func() string { return *p }, false)
}

// Bool defines a boolean flag.
func (f *flagSet) Bool(p *bool, name string, def bool, usage string) {
	*p = def
	f.define(name, usage, func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
		return nil
	}, func() string { return strconv.FormatBool(*p) }, true)
}

// Duration defines a duration flag that must be positive.
func (f *flagSet) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	f.define(name, usage, func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("want a duration such as 30s, 5m or 24h")
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		*p = d
		return nil
	}, func() string { return formatDuration(*p) }, false)
}

// Int defines an integer flag that must not be negative.
func (f *flagSet) Int(p *int, name string, def int, usage string) {
	*p = def
	f.define(name, usage, func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("want an integer")
		}
		if n < 0 {
			return errors.New("must not be negative")
		}
		*p = n
		return nil
	}, func() string { return strconv.Itoa(*p) }, false)
}

// Config defines --config, the YAML file read as the last layer before the defaults.
func (f *flagSet) Config(p *string) {
	f.String(p, "config", "", "YAML file with settings, keyed by flag name (for example 'redis-url: redis://host:6379/0')", nil)
}

// parse sets the flags from, in order of precedence: the command line args, the environment
// (getenv, NEOVRATZ_<FLAG>), the YAML file named by --config, and the defaults. Any bad value
// is a *usageError naming the flag and where the value came from.
//
// ff.Parse would read the environment itself, but only through os.Getenv; the environment
// layer is applied here through getenv instead (with ff's naming rule) so that tests inject an
// environment. ff then applies the config file to the flags still unset.
func (f *flagSet) parse(args []string, getenv func(string) string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		if f.failed != nil {
			return &usageError{msg: f.failed.Error()}
		}
		// Unknown flag, missing value: the flag package's message is one line that names it.
		return &usageError{msg: strings.Replace(err.Error(), "-", "--", 1)}
	}
	if f.fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (this command takes only flags)", f.fs.Arg(0))
	}

	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var envErr error
	f.fs.VisitAll(func(fl *flag.Flag) {
		if envErr != nil || set[fl.Name] {
			return
		}
		key := envVar(fl.Name)
		v := getenv(key)
		if v == "" { // as ff: an empty variable is an unset one
			return
		}
		if err := f.fs.Set(fl.Name, v); err != nil {
			f.failed.source = "from " + key
			envErr = &usageError{msg: f.failed.Error()}
		}
	})
	if envErr != nil {
		return envErr
	}

	configFile := ""
	if fl := f.fs.Lookup("config"); fl != nil {
		configFile = fl.Value.String()
	}
	if configFile == "" {
		return nil
	}
	f.failed = nil
	// ff.Parse parses the (empty) command line again, then sets from the file only the flags
	// that neither the command line nor the environment set.
	err := ff.Parse(f.fs, []string{},
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(func(r io.Reader, set func(name, value string) error) error {
			return yamlParser(r, func(name, value string) error {
				if top, _, _ := strings.Cut(name, "."); f.sections[top] {
					return nil
				}
				return set(name, value)
			})
		}),
	)
	switch {
	case err == nil:
		return nil
	case f.failed != nil:
		f.failed.source = "in config file " + configFile
		return &usageError{msg: f.failed.Error()}
	case errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return usageErrorf("config file: %v", err)
	default:
		var perr ffyaml.ParseError
		if errors.As(err, &perr) {
			err = perr.Inner
		}
		return usageErrorf("config file %s: %s", configFile, oneLine(err.Error()))
	}
}

// yamlParser is ffyaml.Parser with clearer messages for keys that are not flags.
func yamlParser(r io.Reader, set func(name, value string) error) error {
	return ffyaml.Parser(r, func(name, value string) error {
		if name == "config" {
			return errors.New("'config' cannot be set in a config file")
		}
		if err := set(name, value); err != nil {
			if strings.Contains(err.Error(), "not defined in flag set") {
				return fmt.Errorf("unknown setting %q (settings are flag names without the dashes)", name)
			}
			return err
		}
		return nil
	})
}

// formatDuration writes d without zero minutes and seconds: 24h, not 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Usage writes the command's usage text: every flag with its environment variable and default.
func (f *flagSet) Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: neovratz %s %s\n\n%s\n", f.name, f.synopsis, strings.TrimSpace(f.about))
	fmt.Fprint(w, `
Flags (each also read from its environment variable, then from the --config YAML file;
a flag wins over the environment, which wins over the file):

`)
	f.fs.VisitAll(func(fl *flag.Flag) {
		def, ok := f.shown[fl.Name]
		if !ok {
			def = fl.DefValue
			if def == "" {
				def = "none"
			}
		}
		fmt.Fprintf(w, "  --%s\n", fl.Name)
		fmt.Fprintf(w, "        %s\n", fl.Usage)
		fmt.Fprintf(w, "        env %s, default %s\n", envVar(fl.Name), def)
	})
}

// Value checks shared by the commands.

func checkAddr(s string) error {
	if _, _, err := net.SplitHostPort(s); err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8080 or :8080")
	}
	return nil
}

func checkOptionalAddr(s string) error {
	if s == "" {
		return nil
	}
	return checkAddr(s)
}

// checkAdvertiseAddr checks an address other hosts are to reach: host:port with a host that is
// not unspecified (0.0.0.0 is where to listen, not where to connect) and a port in 1-65535.
func checkAdvertiseAddr(s string) error {
	if s == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return errors.New("want host:port that other hosts reach, such as gpu1.internal:9090")
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return errors.New("want the address other hosts reach, not an unspecified one like 0.0.0.0")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errors.New("want a port number in 1-65535")
	}
	return nil
}

func checkRedisURL(s string) error {
	if s == "" {
		return nil
	}
	if _, err := redis.ParseURL(s); err != nil {
		return errors.New("want redis://[user:password@]host:port/db or rediss://…")
	}
	return nil
}

func checkHTTPURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL")
	}
	return nil
}

func checkOneOf(choices ...string) func(string) error {
	return func(s string) error {
		for _, c := range choices {
			if s == c {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(choices, ", "))
	}
}

// logConfig configures the process's logger.
type logConfig struct {
	Level  string // debug, info, warn, error
	Format string // json, text
}

func (c *logConfig) define(f *flagSet) {
	f.String(&c.Level, "log-level", "info", "log level: debug, info, warn or error", checkOneOf("debug", "info", "warn", "error"))
	f.String(&c.Format, "log-format", "json", "log format: json or text", checkOneOf("json", "text"))
}

// newLogger returns the logger the configuration asks for, writing to w.
func (c logConfig) newLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by the flag
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// expandHome replaces a leading ~ in path with home and makes it absolute.
func expandHome(path string, home func() (string, error)) (string, error) {
	if path == "~" || strings.HasPrefix(path, "~/") {
		h, err := home()
		if err != nil {
			return "", fmt.Errorf("expand %s: %w", path, err)
		}
		path = filepath.Join(h, path[1:])
	}
	return filepath.Abs(path)
}

// homeDir returns the user's home directory, from HOME in the injected environment.
func (m *Main) homeDir() (string, error) {
	if h := m.getenv("HOME"); h != "" {
		return h, nil
	}
	return os.UserHomeDir()
}

// brokerConfig selects and tunes the broker.
type brokerConfig struct {
	RedisURL     string // when set, the broker is Redis
	RedisDurable bool   // Redis: acknowledge enqueues only once on disk
	SQLitePath   string // otherwise, the embedded broker's database file
	Config       broker.Config
}

func (c *brokerConfig) define(f *flagSet, redisUsage string) {
	f.String(&c.RedisURL, "redis-url", "", redisUsage, checkRedisURL)
	f.Bool(&c.RedisDurable, "redis-durable", false, "Redis only: acknowledge an enqueue only after Redis has written it to disk (WAITAOF; needs appendonly yes)")
	f.Duration(&c.Config.Lease, "lease", 30*time.Second, "how long a worker holds a job between heartbeats before it is handed out again")
	f.Int(&c.Config.QueueCap, "queue-cap", 0, "most queued jobs per model, beyond which requests get 429 (0: no cap)")
	f.Duration(&c.Config.Retention, "retention", 24*time.Hour, "how long finished jobs and their events are kept")
}
