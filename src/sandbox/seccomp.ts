// The seccomp filter every sandboxed worker runs under, as the classic-BPF bytes bubblewrap's
// `--seccomp FD` loads (Debian ships libseccomp but no tool that compiles a filter, and Node
// cannot link it: the dozen instructions are written here instead).
//
// It refuses (EPERM) what a worker never needs and what widens the kernel surface it can reach:
// user namespaces (unshare/clone with CLONE_NEWUSER: nested namespaces with full capabilities),
// setns, the mount API, the kernel keyring, bpf, perf_event_open, userfaultfd, io_uring, module
// and kexec loading, swap and reboot. clone3 answers ENOSYS, since its flags sit in memory a
// filter cannot read: libc then falls back to clone, whose flags it can. Syscalls of another
// ABI (i386 or x32 on x86_64) are refused, since the numbers above would not match them.
// Pure: the bytes depend only on the architecture.

import { arch } from "node:process";

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff_0000;
const RET_ERRNO = 0x0005_0000;
const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x1000_0000;
const X32_BIT = 0x4000_0000;

interface Abi {
  audit: number;
  clone: number;
  unshare: number;
  clone3: number;
  refused: readonly number[];
}

// Numbers from the kernel's syscall tables (arch/x86/entry/syscalls/syscall_64.tbl,
// include/uapi/asm-generic/unistd.h). Order: setns, mount, umount2, pivot_root, open_tree,
// move_mount, fsopen, fsconfig, fsmount, keyctl, add_key, request_key, bpf, perf_event_open,
// userfaultfd, io_uring_setup/enter/register, init_module, finit_module, delete_module,
// kexec_load, kexec_file_load, swapon, swapoff, reboot, open_by_handle_at.
const ABIS: Partial<Record<NodeJS.Architecture, Abi>> = {
  x64: {
    audit: 0xc000_003e,
    clone: 56,
    unshare: 272,
    clone3: 435,
    refused: [
      308, 165, 166, 155, 428, 429, 430, 431, 432, 250, 248, 249, 321, 298, 323, 425, 426, 427, 175,
      313, 176, 246, 320, 167, 168, 169, 304,
    ],
  },
  arm64: {
    audit: 0xc000_00b7,
    clone: 220,
    unshare: 97,
    clone3: 435,
    refused: [
      268, 40, 39, 41, 428, 429, 430, 431, 432, 219, 217, 218, 280, 241, 282, 425, 426, 427, 105,
      273, 106, 104, 294, 224, 225, 142, 265,
    ],
  },
};

type Insn = { code: number; k: number; jt?: string; jf?: string } | { label: string };

/** The filter for this machine, or undefined where herd knows no syscall table for it. */
export function seccompFilter(machine: NodeJS.Architecture = arch): Buffer | undefined {
  const abi = ABIS[machine];
  if (!abi) return undefined;
  const prog: Insn[] = [
    { code: LD_W_ABS, k: 4 }, // seccomp_data.arch
    { code: JEQ_K, k: abi.audit, jf: "eperm" },
    { code: LD_W_ABS, k: 0 }, // seccomp_data.nr
  ];
  if (machine === "x64") prog.push({ code: JGE_K, k: X32_BIT, jt: "eperm" });
  for (const nr of abi.refused) prog.push({ code: JEQ_K, k: nr, jt: "eperm" });
  prog.push(
    { code: JEQ_K, k: abi.clone3, jt: "enosys" },
    { code: JEQ_K, k: abi.unshare, jt: "flags" },
    { code: JEQ_K, k: abi.clone, jt: "flags" },
    { code: RET_K, k: RET_ALLOW },
    { label: "flags" },
    { code: LD_W_ABS, k: 16 }, // low word of args[0]: the clone/unshare flags
    { code: JSET_K, k: CLONE_NEWUSER, jt: "eperm" },
    { code: RET_K, k: RET_ALLOW },
    { label: "eperm" },
    { code: RET_K, k: RET_ERRNO | EPERM },
    { label: "enosys" },
    { code: RET_K, k: RET_ERRNO | ENOSYS },
  );
  return assemble(prog);
}

/** Resolves labels to the forward offsets classic BPF jumps take; 8 bytes per instruction. */
function assemble(prog: readonly Insn[]): Buffer {
  const at = new Map<string, number>();
  let n = 0;
  for (const insn of prog) {
    if ("label" in insn) at.set(insn.label, n);
    else n++;
  }
  const out = Buffer.alloc(n * 8);
  let i = 0;
  for (const insn of prog) {
    if ("label" in insn) continue;
    const jump = (label?: string) => (label === undefined ? 0 : at.get(label)! - i - 1);
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(jump(insn.jt), i * 8 + 2);
    out.writeUInt8(jump(insn.jf), i * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
    i++;
  }
  return out;
}
