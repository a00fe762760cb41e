"""tt.dot on AMX tiles (Sapphire Rapids and later): tdpbf16ps for bf16, tdpbssd for int8.

A block of 2 x 2 tiles of C (32 x 32) stays in tile registers tmm0-3 over the K loop; per K step
two tiles of A rows (tmm4-5) and two of packed B (tmm6-7) are loaded and multiplied four times.
A is read in place from its packed rows (a tile row is K_TILE consecutive elements of one row of
A), B from its K-group packing in panels of 16 columns (a tile is 16 K groups of one panel, 1 KiB
in a row), C from its buffer.

A kernel whose dots all use one tile configuration loads it (ldtilecfg) once per launch, in its
trampoline, and releases the tiles when the launch's programs are done: both cost hundreds of
cycles, as much as a 128 x 64 x 64 dot's tile multiplies. Otherwise each dot configures the tiles
at its start and releases them at its end. Each dot calls a configure and a release function whose
bodies finish_tiles writes once the whole kernel is lowered. Linux hands out AMX tile state only to
processes that ask (arch_prctl), so a library that uses tiles asks in a constructor that runs when
it is loaded.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from ..target import ARCH_REQ_XCOMP_PERM, SYS_ARCH_PRCTL, XFEATURE_XTILEDATA, can_use_amx
from .. import ir
from . import types as T
from .dot_kernel import parts
from .dot_pack import Panels
from .elementwise import bf16_to_f32
from .lowering import Buffer, Index

# extension -> (tile instruction, bytes of one operand element, K elements per 32-bit lane)
KINDS = {"amx-bf16": ("tdpbf16ps", 2, 2), "amx-int8": ("tdpbssd", 1, 4)}
ROWS = 16          # rows of every tile
ROW_BYTES = 64     # bytes of a full tile row: 16 f32 / i32 of C, 32 bf16 / 64 int8 of A
C_TILES, A_TILES, B_TILES = (0, 1, 2, 3), (4, 5), (6, 7)


def _k_tile(k: int, element_bytes: int) -> int | None:
  """K elements per tile step: a full tile row if K allows, else the largest that divides K."""
  for row_bytes in (ROW_BYTES, 32, 16):
    if k % (row_bytes // element_bytes) == 0:
      return row_bytes // element_bytes
  return None


def fits(target, extension: str, m: int, n: int, k: int) -> bool:
  """Whether this dot can run on tiles: the target has them, M and N are whole tiles (16) and K
  a whole number of 16-byte tile rows."""
  return (m % ROWS == 0 and n % ROWS == 0 and _k_tile(k, KINDS[extension][1]) is not None
          and can_use_amx(target, extension))


def emitter(extension: str):
  def emit(lo, a: Buffer, b: Buffer, c: Buffer, batch, zero: bool, steps=None, block_k=None):
    _matmul(lo, extension, a, b, c, batch, zero, steps)
  return emit


class Tiles:
  """The tile instructions, on the tile registers."""

  def __init__(self, lo):
    self.lo = lo

  def _call(self, name: str, *args):
    fn = self.lo.intrinsic(f"llvm.x86.{name}", llvm.VoidType(), [a.type for a in args])
    self.lo.builder.call(fn, list(args))

  def configure(self, shapes: dict):
    _request_permission(self.lo.module)
    config = _config(self.lo.module, shapes)
    self.lo.builder.call(_stub(self.lo.module, CONFIGURE + config.name), [])

  def zero(self, t: int):
    self._call("tilezero", _tile(t))

  def load(self, t: int, pointer, stride):
    self._call("tileloadd64", _tile(t), pointer, stride)

  def store(self, t: int, pointer, stride):
    self._call("tilestored64", _tile(t), pointer, stride)

  def multiply(self, instruction: str, c: int, a: int, b: int):
    self._call(instruction, _tile(c), _tile(a), _tile(b))

  def release(self):
    self.lo.builder.call(_stub(self.lo.module, RELEASE), [])


class EmulatedTiles(Tiles):
  """The tile instructions as loops over a stack buffer of 8 tiles (the "emulate-amx" target
  feature): tests the kernel's addressing and packing on machines without AMX."""

  def __init__(self, lo):
    super().__init__(lo)
    self.file = lo.new_buffer(ir.TensorType((8 * ROWS * ROW_BYTES,), ir.ScalarType("i8")))
    self.shapes = {}

  def _row(self, t: int, r):
    b = self.lo.builder
    offset = b.add(T.I32(t * ROWS * ROW_BYTES), b.mul(r, T.I32(ROW_BYTES)))
    return b.gep(self.file.pointer, [offset], source_etype=T.I8)

  def configure(self, shapes: dict):
    self.shapes = shapes

  def zero(self, t: int):
    zeros = T.constant(llvm.VectorType(T.I8, ROW_BYTES), 0)
    with self.lo.loop(ROWS) as r:
      self.lo.builder.store(zeros, self._row(t, r), align=1)

  def _copy_rows(self, t: int, pointer, stride, to_tile: bool):
    b = self.lo.builder
    rows, row_bytes = self.shapes[t]
    with self.lo.loop(rows) as r:
      memory = b.gep(pointer, [b.mul(b.zext(r, T.I64), stride)], source_etype=T.I8)
      tile = self._row(t, r)
      self.lo.memcpy(tile if to_tile else memory, memory if to_tile else tile, row_bytes)

  def load(self, t: int, pointer, stride):
    self._copy_rows(t, pointer, stride, to_tile=True)

  def store(self, t: int, pointer, stride):
    self._copy_rows(t, pointer, stride, to_tile=False)

  def multiply(self, instruction: str, c: int, a: int, b: int):
    """c[m][n] += sum over the lanes' K groups of a[m][group] . b[group][n], in f32 (bf16) or i32."""
    lo, bld = self.lo, self.lo.builder
    rows, a_bytes = self.shapes[a]
    is_float = instruction == "tdpbf16ps"
    element, group = (T.I16, 2) if is_float else (T.I8, 4)
    acc_type = T.F32 if is_float else T.I32
    with lo.loop(rows) as m, lo.loop(a_bytes // 4) as g, lo.loop(ROWS) as n:
      slot = bld.gep(self._row(c, m), [bld.mul(n, T.I32(4))], source_etype=T.I8)
      total = bld.load(slot, typ=acc_type, align=4)
      for i in range(group):
        x = bld.load(bld.gep(self._row(a, m), [bld.add(bld.mul(g, T.I32(4)),
                                                      T.I32(i * 4 // group))],
                             source_etype=T.I8), typ=element, align=1)
        y = bld.load(bld.gep(self._row(b, g), [bld.add(bld.mul(n, T.I32(4)),
                                                      T.I32(i * 4 // group))],
                             source_etype=T.I8), typ=element, align=1)
        if is_float:
          total = bld.fadd(total, bld.fmul(bf16_to_f32(bld, x), bf16_to_f32(bld, y)))
        else:
          total = bld.add(total, bld.mul(bld.sext(x, T.I32), bld.sext(y, T.I32)))
      bld.store(total, slot, align=4)

  def release(self):
    pass


def _tile(i: int):
  return llvm.Constant(T.I8, i)


def k_tile(extension: str, k: int) -> int:
  """K elements per tile step of a dot of depth k."""
  return _k_tile(k, KINDS[extension][1])


def _matmul(lo, extension, a: Buffer, b: Buffer, c: Buffer, batch, zero, steps=None):
  """c (+)= a @ b over `steps` K groups of B (default all; an i32 value: known at run time, a
  multiple of the K tile)."""
  instruction, element_bytes, group = KINDS[extension]
  m, n = c.type.shape[-2:]
  kp = a.type.shape[-1]
  k_tile = _k_tile(kp, element_bytes)
  tiles_in_k = kp // k_tile if steps is None else lo.builder.udiv(steps, T.I32(k_tile // group))
  tiles = (EmulatedTiles if lo.target.has("emulate-amx") else Tiles)(lo)
  shapes = {t: (ROWS, ROW_BYTES) for t in C_TILES}
  shapes.update({t: (ROWS, k_tile * element_bytes) for t in A_TILES})
  shapes.update({t: (k_tile // group, ROW_BYTES) for t in B_TILES})
  tiles.configure(shapes)
  bld = lo.builder
  b_row = b.row * element_bytes if isinstance(b, Panels) else n * 4  # one K group of B's columns
  strides = {"a": T.I64(kp * element_bytes), "b": T.I64(b_row), "c": T.I64(n * 4)}
  for m_start, m_count, rows in parts(m, 2 * ROWS):
    for n_start, n_count, cols in parts(n, 2 * ROWS):
      with lo.loop(m_count, rows) as mi, lo.loop(n_count, cols) as ni:
        m0 = bld.add(mi, T.I32(m_start)) if m_start else mi
        n0 = bld.add(ni, T.I32(n_start)) if n_start else ni
        row_tiles, col_tiles = rows // ROWS, cols // ROWS
        c_at = [[_at(bld, c, batch, _plus(bld, m0, i * ROWS), _plus(bld, n0, j * ROWS))
                 for j in range(col_tiles)] for i in range(row_tiles)]
        for i in range(row_tiles):
          for j in range(col_tiles):
            if zero:
              tiles.zero(C_TILES[2 * i + j])
            else:
              tiles.load(C_TILES[2 * i + j], c_at[i][j], strides["c"])
        with lo.loop(tiles_in_k) as kt:
          k0 = bld.mul(kt, T.I32(k_tile))
          g0 = bld.mul(kt, T.I32(k_tile // group))
          for i in range(row_tiles):
            tiles.load(A_TILES[i], _at(bld, a, batch, _plus(bld, m0, i * ROWS), k0), strides["a"])
          for j in range(col_tiles):
            col = bld.mul(_plus(bld, n0, j * ROWS), T.I32(group))
            tiles.load(B_TILES[j], _at(bld, b, batch, g0, col), strides["b"])
          for i in range(row_tiles):
            for j in range(col_tiles):
              tiles.multiply(instruction, C_TILES[2 * i + j], A_TILES[i], B_TILES[j])
        for i in range(row_tiles):
          for j in range(col_tiles):
            tiles.store(C_TILES[2 * i + j], c_at[i][j], strides["c"])
  tiles.release()


def _plus(b, x, constant: int):
  return b.add(x, T.I32(constant)) if constant else x


def _at(b, buf: Buffer, batch, row, col):
  dims = (row, col) if batch is None else (batch, row, col)
  return buf.address(b, Index(dims, 1))


def _config(module, shapes: dict):
  """The 64-byte tile configuration (palette 1): per tile its bytes per row (bytes 16-47, u16)
  and its rows (bytes 48-63); shapes: tile -> (rows, bytes per row)."""
  data = bytearray(64)
  data[0] = 1
  for t, (rows, row_bytes) in shapes.items():
    data[16 + 2 * t:18 + 2 * t] = row_bytes.to_bytes(2, "little")
    data[48 + t] = rows
  name = f"jtc.amx_config.{data.hex()}"
  existing = module.globals.get(name)
  if existing is not None:
    return existing
  array = llvm.ArrayType(T.I8, 64)
  g = llvm.GlobalVariable(module, array, name=name)
  g.global_constant = True
  g.linkage = "private"
  g.align = 64
  g.initializer = llvm.Constant(array, bytearray(data))
  return g


CONFIGURE, RELEASE = "jtc.amx_configure.", "jtc.amx_release"  # the dots' calls, by name


def _stub(module, name: str) -> llvm.Function:
  """A function of no arguments, inlined where called, whose body finish_tiles defines."""
  fn = module.globals.get(name)
  if fn is None:
    fn = llvm.Function(module, llvm.FunctionType(llvm.VoidType(), []), name=name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
  return fn


def _load_config(b: llvm.IRBuilder, config):
  b.call(T.declare(b.block.function.module, "llvm.x86.ldtilecfg", llvm.VoidType(), [T.PTR]),
         [config])


def _release_tiles(b: llvm.IRBuilder):
  b.call(T.declare(b.block.function.module, "llvm.x86.tilerelease", llvm.VoidType(), []), [])


def finish_tiles(module):
  """Defines the dots' configure and release functions. If every dot uses one configuration,
  they are empty and this returns (enter, leave): what the launch runs before its first program
  (load that configuration) and after its last (release the tiles); else None (each dot then
  configures and releases)."""
  configures = [g for g in module.globals.values()
                if isinstance(g, llvm.Function) and g.name.startswith(CONFIGURE)]
  config_of = lambda fn: module.globals[fn.name[len(CONFIGURE):]]
  once = len(configures) == 1
  for fn in configures:
    b = llvm.IRBuilder(fn.append_basic_block())
    if not once:
      _load_config(b, config_of(fn))
    b.ret_void()
  release = module.globals.get(RELEASE)
  if release is not None:
    b = llvm.IRBuilder(release.append_basic_block())
    if not once:
      _release_tiles(b)
    b.ret_void()
  if not once:
    return None
  config = config_of(configures[0])
  return (lambda b: _load_config(b, config)), _release_tiles


def _request_permission(module):
  """A constructor, run when the library is loaded, asking Linux for AMX tile data (before any
  tile instruction; refused or not, it changes nothing else)."""
  name = "jtc.amx_permission"
  if module.globals.get(name) is not None:
    return
  fn = llvm.Function(module, llvm.FunctionType(llvm.VoidType(), []), name=name)
  fn.linkage = "internal"
  b = llvm.IRBuilder(fn.append_basic_block())
  syscall = T.declare(module, "syscall", T.I64, [T.I64], var_arg=True)
  b.call(syscall, [T.I64(SYS_ARCH_PRCTL), T.I64(ARCH_REQ_XCOMP_PERM), T.I64(XFEATURE_XTILEDATA)])
  b.ret_void()
  entry = llvm.LiteralStructType([T.I32, T.PTR, T.PTR])
  ctors = llvm.GlobalVariable(module, llvm.ArrayType(entry, 1), name="llvm.global_ctors")
  ctors.linkage = "appending"
  ctors.initializer = llvm.Constant(llvm.ArrayType(entry, 1), [
      llvm.Constant(entry, [T.I32(65535), fn, llvm.Constant(T.PTR, None)])])
