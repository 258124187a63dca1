// Package docker holds the JupyterLab image (Dockerfile) and its compose file; these tests check them
// statically, since no Docker engine runs where the tests do.
package docker

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerArgs returns the default of every ARG in the Dockerfile (the last definition wins; all
// definitions of one name must agree).
func dockerArgs(t *testing.T, dockerfile string) map[string]string {
	t.Helper()
	args := map[string]string{}
	re := regexp.MustCompile(`(?m)^ARG\s+([A-Z_]+)=(\S+)\s*$`)
	for _, m := range re.FindAllStringSubmatch(dockerfile, -1) {
		if old, ok := args[m[1]]; ok && old != m[2] {
			t.Errorf("ARG %s defined twice with different defaults: %s and %s", m[1], old, m[2])
		}
		args[m[1]] = m[2]
	}
	return args
}

func moduleVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatalf("go.mod does not require %s", module)
	}
	return m[1]
}

// TestVersionsAgreeWithGoMod: the image must build what go.mod pins, with the Go toolchain CI uses.
func TestVersionsAgreeWithGoMod(t *testing.T) {
	df := readFile(t, "Dockerfile")
	gomod := readFile(t, "../go.mod")
	ci := readFile(t, "../.ci/run")
	args := dockerArgs(t, df)
	for arg, module := range map[string]string{
		"GOMLX_VERSION": "github.com/gomlx/gomlx",
		"GOXLA_VERSION": "github.com/gomlx/go-xla",
		"GONB_VERSION":  "github.com/janpfeifer/gonb",
	} {
		if got, want := args[arg], moduleVersion(t, gomod, module); got != want {
			t.Errorf("Dockerfile ARG %s=%s, go.mod pins %s %s", arg, got, module, want)
		}
	}
	m := regexp.MustCompile(`GOTOOLCHAIN=go(\d+\.\d+\.\d+)`).FindStringSubmatch(ci)
	if m == nil {
		t.Fatal(".ci/run does not set GOTOOLCHAIN=goX.Y.Z")
	}
	if args["GO_VERSION"] != m[1] {
		t.Errorf("Dockerfile GO_VERSION=%s, CI uses go%s", args["GO_VERSION"], m[1])
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if goLine == nil || !strings.HasPrefix(args["GO_VERSION"], goLine[1]+".") {
		t.Errorf("Dockerfile GO_VERSION=%s does not satisfy go.mod's go %v", args["GO_VERSION"], goLine)
	}
	for name, v := range args {
		if v == "" || strings.Contains(strings.ToLower(v), "latest") {
			t.Errorf("ARG %s=%q is not pinned", name, v)
		}
	}
	for _, line := range regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1) {
		img := line[1]
		if !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
			t.Errorf("FROM %s is not pinned to a tag", img)
		}
	}
	if strings.Contains(df, "@latest") {
		t.Error("Dockerfile installs something @latest")
	}
}

// TestCopySourcesExist: every COPY source (outside multi-stage --from copies) exists in the build
// context (the repository root, as docker/compose.yaml sets it).
func TestCopySourcesExist(t *testing.T) {
	df := readFile(t, "Dockerfile")
	sc := bufio.NewScanner(strings.NewReader(df))
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "COPY" {
			continue
		}
		var srcs []string
		from := false
		for _, w := range f[1 : len(f)-1] {
			if strings.HasPrefix(w, "--from=") {
				from = true
			}
			if !strings.HasPrefix(w, "--") {
				srcs = append(srcs, w)
			}
		}
		if from {
			continue
		}
		for _, s := range srcs {
			if _, err := os.Stat(filepath.Join("..", s)); err != nil {
				t.Errorf("COPY source %s: %v", s, err)
			}
			n++
		}
	}
	if n < 3 {
		t.Errorf("found only %d COPY sources", n)
	}
	compose := readFile(t, "compose.yaml")
	for _, want := range []string{"context: ..", "dockerfile: docker/Dockerfile", `"127.0.0.1:${LEARNRESIZE_PORT:-8888}:8888"`,
		"driver: nvidia", "capabilities: [gpu]", "healthcheck:", "JUPYTER_TOKEN", "profiles: [\"cpu\"]"} {
		if !strings.Contains(compose, want) {
			t.Errorf("compose.yaml lacks %q", want)
		}
	}
}

// lintRequired: .ci/run sets LEARNRESIZE_DOCKER_LINT=1 after installing the tools, so a missing tool
// there is a failure; elsewhere the tool-based checks are skipped.
func lintTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("LEARNRESIZE_DOCKER_LINT") != "" {
			t.Fatalf("%s not installed but LEARNRESIZE_DOCKER_LINT is set", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// TestComposeConfigValidates runs a real compose implementation (Debian's docker-compose) on the file.
func TestComposeConfigValidates(t *testing.T) {
	tool := lintTool(t, "docker-compose")
	for _, profile := range [][]string{nil, {"--profile", "cpu"}} {
		args := append(append([]string{}, profile...), "-f", "compose.yaml", "config", "--quiet")
		if len(profile) == 0 {
			args = []string{"-f", "compose.yaml", "config", "--quiet"}
		}
		cmd := exec.Command(tool, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker-compose %v: %v\n%s", args, err, out)
		}
	}
}

// TestDockerfileLints runs dockerfilelint (npm) on the Dockerfile.
func TestDockerfileLints(t *testing.T) {
	tool := lintTool(t, "dockerfilelint")
	cmd := exec.Command(tool, "Dockerfile")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("dockerfilelint: %v\n%s", err, out)
	}
}
