// Independent check of Consentry's ledger with Go's golang.org/x/mod/sumdb
// packages: note.Open verifies our checkpoint signatures, tlog.CheckRecord
// our inclusion proofs and tlog.CheckTree our consistency proofs.
// Built in GOPATH mode against Debian's golang-golang-x-mod-dev.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Index int64    `json:"index"`
	Entry string   `json:"entry"`
	Proof []string `json:"proof"`
}

type consistency struct {
	Old     int64    `json:"old"`
	OldRoot string   `json:"old_root"`
	Proof   []string `json:"proof"`
}

type tree struct {
	Size        int64         `json:"size"`
	Note        string        `json:"note"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

type fixture struct {
	VKey  string `json:"vkey"`
	Trees []tree `json:"trees"`
}

func hash(s string) tlog.Hash {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		fail("bad hash %q", s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

func hashes(ss []string) []tlog.Hash {
	out := make([]tlog.Hash, len(ss))
	for i, s := range ss {
		out[i] = hash(s)
	}
	return out
}

func fail(f string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+f+"\n", args...)
	os.Exit(1)
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	var fx fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		fail("%v", err)
	}
	v, err := note.NewVerifier(fx.VKey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	checks := 0
	for _, t := range fx.Trees {
		n, err := note.Open([]byte(t.Note), note.VerifierList(v))
		if err != nil {
			fail("size %d: note.Open: %v", t.Size, err)
		}
		lines := strings.Split(n.Text, "\n")
		if len(lines) < 4 || lines[0] != v.Name() {
			fail("size %d: bad checkpoint body %q", t.Size, n.Text)
		}
		size, err := strconv.ParseInt(lines[1], 10, 64)
		if err != nil || size != t.Size {
			fail("size %d: checkpoint size %q", t.Size, lines[1])
		}
		root := hash(lines[2])
		checks++
		// A tampered note must not open.
		bad := strings.Replace(t.Note, "\n"+lines[1]+"\n", "\n"+strconv.FormatInt(size+1, 10)+"\n", 1)
		if _, err := note.Open([]byte(bad), note.VerifierList(v)); err == nil {
			fail("size %d: tampered note opened", t.Size)
		}
		for _, in := range t.Inclusion {
			entry, err := base64.StdEncoding.DecodeString(in.Entry)
			if err != nil {
				fail("entry: %v", err)
			}
			leaf := tlog.RecordHash(entry)
			proof := tlog.RecordProof(hashes(in.Proof))
			if err := tlog.CheckRecord(proof, t.Size, root, in.Index, leaf); err != nil {
				fail("size %d index %d: CheckRecord: %v", t.Size, in.Index, err)
			}
			if err := tlog.CheckRecord(proof, t.Size, root, in.Index, tlog.RecordHash(append(entry, 'x'))); err == nil {
				fail("size %d index %d: wrong leaf accepted", t.Size, in.Index)
			}
			checks++
		}
		for _, c := range t.Consistency {
			proof := tlog.TreeProof(hashes(c.Proof))
			if err := tlog.CheckTree(proof, t.Size, root, c.Old, hash(c.OldRoot)); err != nil {
				fail("size %d from %d: CheckTree: %v", t.Size, c.Old, err)
			}
			checks++
		}
	}
	fmt.Printf("ok %d checks\n", checks)
}
