package diffusion

import (
	"bytes"
	"errors"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/diffusion/sdtest"
	"github.com/neovratz/neovratz/internal/safetensors"
)

// headerOnly builds a file from tensor names and shapes (F16, zero data):
// Detect reads names and shapes only.
func headerOnly(t *testing.T, infos []safetensors.TensorInfo) *safetensors.File {
	t.Helper()
	var data []safetensors.Data
	for _, ti := range infos {
		n := 2
		for _, d := range ti.Shape {
			n *= d
		}
		data = append(data, safetensors.Data{TensorInfo: ti, Bytes: make([]byte, n)})
	}
	var b bytes.Buffer
	if err := safetensors.Write(&b, data, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// oracleHeader is an oracle checkpoint's tensor list with zero-sized
// stand-ins for the big tensors: only names and shapes matter here, so
// the shapes that Detect reads are kept and every other tensor is [1].
func oracleHeader(t *testing.T, name string) *safetensors.File {
	o, err := sdtest.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := o.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	for i := range infos {
		switch infos[i].Name {
		case inConv, attn2K, projIn:
		default:
			infos[i].Shape = []int{1}
		}
	}
	return headerOnly(t, infos)
}

func TestDetectOracles(t *testing.T) {
	tests := []struct {
		oracle string
		want   Kind
	}{
		{sdtest.SD1, Kind{Family: SD1, ModelChannels: 32, ContextDim: 768}},
		{sdtest.SD2, Kind{Family: SD2, ModelChannels: 64, ContextDim: 1024, LinearProj: true}},
	}
	for _, tt := range tests {
		got, err := Detect(oracleHeader(t, tt.oracle))
		if err != nil {
			t.Fatalf("%s: %v", tt.oracle, err)
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.oracle, got, tt.want)
		}
	}
}

func TestDetectUnsupported(t *testing.T) {
	f16 := safetensors.F16
	tests := []struct {
		name  string
		infos []safetensors.TensorInfo
		msg   string
	}{
		{"sdxl", []safetensors.TensorInfo{{Name: "conditioner.embedders.0.x", DType: f16, Shape: []int{1}}}, "SDXL"},
		{"flux", []safetensors.TensorInfo{{Name: unetPrefix + "double_blocks.0.x", DType: f16, Shape: []int{1}}}, "Flux"},
		{"empty", nil, "no SD UNet"},
		{"bad context", []safetensors.TensorInfo{
			{Name: inConv, DType: f16, Shape: []int{320, 4, 3, 3}},
			{Name: attn2K, DType: f16, Shape: []int{320, 2048}},
			{Name: "cond_stage_model.transformer.text_model.x", DType: f16, Shape: []int{1}},
		}, "2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Detect(headerOnly(t, tt.infos))
			if !errors.Is(err, ErrUnsupportedModel) || !bytes.Contains([]byte(err.Error()), []byte(tt.msg)) {
				t.Errorf("Detect = %v, want ErrUnsupportedModel mentioning %q", err, tt.msg)
			}
		})
	}
}
