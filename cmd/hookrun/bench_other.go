//go:build !linux

package main

import "syscall"

func benchChildAttr() *syscall.SysProcAttr { return nil }
