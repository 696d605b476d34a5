package testproc

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"testing"
)

func TestMain(m *testing.M) {
	RunRole(map[string]func(){
		// echo answers each line with itself, says "bye" at the end of
		// its input and exits.
		"echo": func() {
			fmt.Println("ready")
			in := bufio.NewScanner(os.Stdin)
			for in.Scan() {
				fmt.Println(in.Text())
			}
			fmt.Println("bye")
		},
		"exit3": func() { os.Exit(3) },
	})
	os.Exit(m.Run())
}

func TestRoundTrip(t *testing.T) {
	p := Start(t, Command("echo", "X=1"))
	p.Expect(t, "ready")
	if got := p.Do("hello"); got != "hello" {
		t.Fatalf("Do = %q", got)
	}
	p.Must(t, "ok")
	if err := p.Send("last"); err != nil {
		t.Fatal(err)
	}
	rest, err := p.End()
	if err != nil || !reflect.DeepEqual(rest, []string{"last", "bye"}) {
		t.Fatalf("End = %q, %v; want the rest of the output and a clean exit", rest, err)
	}
	if rest, err := p.End(); rest != nil || err != nil {
		t.Fatalf("second End = %q, %v; want nothing more", rest, err)
	}
}

func TestExitAndKill(t *testing.T) {
	p := Start(t, Command("exit3"))
	if _, err := p.Line(); err != ErrExited {
		t.Fatalf("Line of a child that exited = %v; want ErrExited", err)
	}
	if got := p.Recv(); got != ErrExited.Error() {
		t.Fatalf("Recv = %q", got)
	}
	if _, err := p.End(); p.Cmd.ProcessState.ExitCode() != 3 || err == nil {
		t.Fatalf("End: %v, exit code %d; want 3", err, p.Cmd.ProcessState.ExitCode())
	}
	q := Start(t, Command("echo"))
	q.Expect(t, "ready")
	q.Kill()
	if q.Cmd.ProcessState == nil || q.Cmd.ProcessState.Success() {
		t.Fatalf("after Kill: %v", q.Cmd.ProcessState)
	}
}
