package main

import (
	"flag"
	"strings"
)

// splitArgs separates the positional arguments of a command (neovratz pull REF, neovratz run
// MODEL PROMPT) from its flags, which may come before, between or after them as people type
// them. A flag's value is the next argument unless the flag is boolean or written --flag=value;
// everything after "--" is positional. short maps one-letter aliases (o → output).
func splitArgs(f *flagSet, args []string, short map[string]string) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(positional, args[i+1:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, value, hasValue := strings.Cut(name, "=")
		if long, ok := short[name]; ok {
			name = long
			a = "--" + name
			if hasValue {
				a += "=" + value
			}
		}
		flags = append(flags, a)
		fl := f.fs.Lookup(name)
		if hasValue || fl == nil || isBoolFlag(fl) {
			continue // an unknown flag is left for the parser to report
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, positional
}

func isBoolFlag(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
