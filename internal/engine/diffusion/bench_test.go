//go:build unix

package diffusion

import (
	"flag"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/engine/diffusion/clip"
	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/engine/diffusion/rng"
	"github.com/neovratz/neovratz/internal/engine/diffusion/sdtest"
	"github.com/neovratz/neovratz/internal/kernels"
)

var sd15 = flag.String("sd15", "", "path of the SD 1.5-shaped recipe checkpoint for BenchmarkSD15 (written there if missing)")

// BenchmarkSD15 times the parts of a generation on an SD 1.5-shaped
// checkpoint (the oracle recipe at base width 320, 2.1 GB, F16), as
// docs/benchmarks.md reports them:
//
//	go test -run='^$' -bench=SD15 -benchtime=1x ./internal/engine/diffusion/ -args -sd15=/tmp/sd15.safetensors
func BenchmarkSD15(b *testing.B) {
	if *sd15 == "" {
		b.Skip("needs -sd15=PATH")
	}
	if _, err := os.Stat(*sd15); err != nil {
		o, err := sdtest.Load(sdtest.SD1)
		if err != nil {
			b.Fatal(err)
		}
		tensors, err := o.Tensors()
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(*sd15)
		if err != nil {
			b.Fatal(err)
		}
		if err := sdtest.WriteCheckpoint(f, sdtest.WithBaseWidth(tensors, 320), o.RecipeSeed); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	m, err := Open(*sd15)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	pool := kernels.NewPool(2)
	defer pool.Close()
	for range b.N {
		start := time.Now()
		ctx, err := m.text.Condition(m.tok.Tokenize("a red cat", clip.PadSD1), 0, pool)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/text")
		for _, side := range []int{256, 512} {
			l := side / 8
			x := &nn.Map{C: 4, H: l, W: l, Data: rng.NewPhilox(1).Randn(4 * l * l)}
			start = time.Now()
			if _, err := m.unet.Forward(x, 999, ctx, pool); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "s/step@"+strconv.Itoa(side))
			start = time.Now()
			m.vae.Decode(x, pool)
			b.ReportMetric(time.Since(start).Seconds(), "s/vae@"+strconv.Itoa(side))
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024/1024, "GB-peak-RSS")
	}
}
