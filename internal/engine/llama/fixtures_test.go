package llama

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
)

// fixturesDir makes TestWriteFixtures write the golden fixture models, for running the
// llama-oracle on them (see testdata/README.md).
var fixturesDir = flag.String("fixtures", "", "write the golden fixture models to this directory")

// goldenFixture is a fixture model whose llama.cpp outputs are in testdata/golden/NAME.json.
type goldenFixture struct {
	name string
	spec llamatest.Spec
}

func goldenFixtures() []goldenFixture {
	var fs []goldenFixture
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16} {
			fs = append(fs, goldenFixture{name: arch + "-" + typ.String(), spec: llamatest.Small(arch, typ)})
		}
		for _, typ := range quantTypes {
			fs = append(fs, goldenFixture{name: arch + "-" + typ.String(), spec: llamatest.Quant(arch, typ, false)})
		}
		fs = append(fs, goldenFixture{name: arch + "-Q4_K_M", spec: llamatest.Quant(arch, gguf.TypeQ4_K, true)})
	}
	return fs
}

// quantTypes are the quantized weight types the engine runs.
var quantTypes = []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K}

// benchDir makes TestWriteBenchFixtures write the benchmark models (see docs/benchmarks.md).
var benchDir = flag.String("bench-fixtures", "", "write the Qwen2.5-0.5B-shaped benchmark models to this directory")

func TestWriteBenchFixtures(t *testing.T) {
	if *benchDir == "" {
		t.Skip("set -bench-fixtures DIR to write the benchmark models")
	}
	for name, s := range map[string]llamatest.Spec{
		"qwen05b-Q8_0.gguf":   llamatest.Qwen05B(gguf.TypeQ8_0, false),
		"qwen05b-Q4_K_M.gguf": llamatest.Qwen05B(gguf.TypeQ4_K, true),
	} {
		if err := llamatest.Write(filepath.Join(*benchDir, name), s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteFixtures(t *testing.T) {
	if *fixturesDir == "" {
		t.Skip("set -fixtures DIR to write the fixture models")
	}
	for _, f := range goldenFixtures() {
		if err := llamatest.Write(filepath.Join(*fixturesDir, f.name+".gguf"), f.spec); err != nil {
			t.Fatal(err)
		}
	}
}
