// Command record is a CNI plugin for tests: it appends each call it gets
// (command, container ID, netns, interface, CNI_ARGS and runtimeConfig)
// as one JSON line to the file named by its configuration's "file", then
// answers as a chained plugin does, passing prevResult on. Without a
// prevResult, its ADD answers with the address of its configuration's
// "ip" on eth0 in the sandbox. With "failAdd", ADD fails.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

type config struct {
	CNIVersion    string          `json:"cniVersion"`
	File          string          `json:"file"`
	IP            string          `json:"ip"`
	FailAdd       bool            `json:"failAdd"`
	PrevResult    json.RawMessage `json:"prevResult"`
	RuntimeConfig json.RawMessage `json:"runtimeConfig"`
}

type call struct {
	Command       string          `json:"command"`
	ContainerID   string          `json:"containerID"`
	NetNS         string          `json:"netns"`
	IfName        string          `json:"ifName"`
	Args          string          `json:"args"`
	RuntimeConfig json.RawMessage `json:"runtimeConfig,omitempty"`
}

func main() {
	if err := run(); err != nil {
		json.NewEncoder(os.Stdout).Encode(map[string]any{"cniVersion": "1.0.0", "code": 999, "msg": err.Error()})
		os.Exit(1)
	}
}

func run() error {
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	cmd := os.Getenv("CNI_COMMAND")
	if cmd == "VERSION" {
		fmt.Printf(`{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}`)
		return nil
	}
	var cfg config
	if err := json.Unmarshal(stdin, &cfg); err != nil {
		return err
	}
	c := call{
		Command: cmd, ContainerID: os.Getenv("CNI_CONTAINERID"), NetNS: os.Getenv("CNI_NETNS"),
		IfName: os.Getenv("CNI_IFNAME"), Args: os.Getenv("CNI_ARGS"), RuntimeConfig: cfg.RuntimeConfig,
	}
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(cfg.File, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if cmd != "ADD" {
		return nil
	}
	if cfg.FailAdd {
		return fmt.Errorf("told to fail")
	}
	if len(cfg.PrevResult) > 0 {
		_, err := os.Stdout.Write(cfg.PrevResult)
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"cniVersion": cfg.CNIVersion,
		"interfaces": []any{map[string]any{"name": c.IfName, "sandbox": c.NetNS}},
		"ips":        []any{map[string]any{"address": cfg.IP, "interface": 0}},
	})
}
