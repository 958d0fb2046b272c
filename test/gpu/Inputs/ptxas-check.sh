#!/bin/sh
# ptxas-check.sh PTXAS FILE.ptx SM    assembles FILE.ptx for sm_SM with
#                                     ptxas -v and checks what it reports
# ptxas-check.sh --log LOG SM         checks a saved ptxas -v log
#
# For every kernel: no stack frame, no spill stores or loads, at most 255
# registers and at most 48 KiB of static shared memory (the kernels of
# KernelAbi.h use no dynamic shared memory yet). Prints one line per kernel
# and fails naming the kernel and the limit it breaks.
set -e
if [ "$1" = --log ]; then
  log=$2 sm=$3
else
  log=$2.ptxas-log sm=$3
  "$1" "-arch=sm_$sm" -v "$2" -o "$2.sm_$sm.cubin" > "$log" 2>&1 || {
    cat "$log"; echo "ptxas-check: ptxas rejected $2 for sm_$sm"; exit 1; }
fi
awk -v sm="sm_$sm" '
  function finish() {
    if (name == "") return
    verdict = "ok"
    if (stack > 0) verdict = "FAIL: a " stack "-byte stack frame (local memory)"
    if (stores > 0 || loads > 0) verdict = "FAIL: spills (" stores " bytes stored, " loads " loaded)"
    if (regs > 255) verdict = "FAIL: " regs " registers, above 255"
    if (smem > 49152) verdict = "FAIL: " smem " bytes of static shared memory, above 48 KiB"
    if (regs < 0) verdict = "FAIL: ptxas reported no register count"
    printf "ptxas-check: %s %s: %d registers, %d bytes smem, %d bytes stack, %d bytes spill stores, %d bytes spill loads: %s\n", name, sm, regs, smem, stack, stores, loads, verdict
    if (verdict != "ok") bad = 1
    kernels++
    name = ""
  }
  /Compiling entry function/ {
    finish()
    name = $0; sub(/.*entry function \047/, "", name); sub(/\047.*/, "", name)
    regs = -1; smem = 0; stack = 0; stores = 0; loads = 0
  }
  /bytes stack frame/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) == "bytes" && $(i+2) == "stack") stack = $i
      if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) ~ /^stores/) stores = $i
      if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) ~ /^loads/) loads = $i
    }
  }
  /Used [0-9]+ registers/ {
    for (i = 1; i <= NF; i++) {
      if ($i == "Used") regs = $(i+1)
      if ($(i+1) == "bytes" && $(i+2) ~ /^smem/) smem = $i
    }
  }
  END {
    finish()
    if (kernels == 0) { print "ptxas-check: no kernel in the ptxas log"; exit 1 }
    exit bad
  }' "$log"
