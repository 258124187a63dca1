package backendtest

import (
	"testing"

	"github.com/learnresize/learnresize/internal/layers"
)

func TestEnvPortableIsLayers(t *testing.T) {
	if EnvPortable != layers.EnvPortable {
		t.Errorf("EnvPortable %q, internal/layers reads %q", EnvPortable, layers.EnvPortable)
	}
}
