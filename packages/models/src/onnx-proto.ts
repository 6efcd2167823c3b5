/**
 * The few ONNX messages that `exportOnnx` writes, encoded by hand as protocol buffers (no protobuf
 * dependency). Field numbers are those of onnx/onnx.proto (proto2): ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
 * OperatorSetIdProto and StringStringEntryProto. Only what the exporter needs is here.
 */

/** Protobuf wire types. */
const VARINT = 0;
const FIXED32 = 5;
const LEN = 2;

/**
 * A protobuf message being written: fields are appended in order, and a nested message is kept as
 * its parts (no copy) until {@link ProtoMessage.finish} joins everything into one buffer.
 */
export class ProtoMessage {
  private readonly parts: Uint8Array[] = [];
  /** The encoded size in bytes so far. */
  size = 0;

  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private tag(field: number, wire: number): void {
    this.push(varint((field << 3) | wire));
  }

  /** An int32/int64/enum field; negative values take ten bytes (two's complement), as protobuf does. */
  int(field: number, value: number): this {
    this.tag(field, VARINT);
    this.push(varint(value));
    return this;
  }

  /** A `float` field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  /** A `bytes` field. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, LEN);
    this.push(varint(value.length));
    this.push(value);
    return this;
  }

  /** A `string` field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message field. */
  message(field: number, m: ProtoMessage): this {
    this.tag(field, LEN);
    this.push(varint(m.size));
    for (const p of m.parts) this.push(p);
    return this;
  }

  /** The encoded message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** Base-128 varint of an integer; negative numbers as their 64-bit two's complement. */
function varint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value)) throw new Error(`onnx: ${value} is not an integer that protobuf can encode exactly`);
  const bytes: number[] = [];
  if (value >= 0) {
    let v = value;
    while (v >= 0x80) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
  } else {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
  }
  return Uint8Array.from(bytes);
}

/** TensorProto.DataType values used here. */
export const FLOAT = 1;
export const INT64 = 7;

/** An attribute of a node, by the type ONNX declares for it (AttributeProto.AttributeType). */
export type OnnxAttribute =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'ints'; value: readonly number[] }
  | { name: string; type: 'floats'; value: readonly number[] };

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: readonly OnnxAttribute[];
}

/** A constant tensor (a graph initializer): float32 or int64 data, row-major. */
export interface OnnxTensor {
  name: string;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

/** A graph input or output: a float tensor whose dimensions are sizes or symbolic names ('N'). */
export interface OnnxValueInfo {
  name: string;
  dims: readonly (number | string)[];
}

export interface OnnxModel {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  docString: string;
  graphName: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  metadata: Readonly<Record<string, string>>;
}

/** AttributeProto.AttributeType. */
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, floats: 6, ints: 7 } as const;

function attribute(a: OnnxAttribute): ProtoMessage {
  const m = new ProtoMessage().string(1, a.name).int(20, ATTRIBUTE_TYPE[a.type]);
  switch (a.type) {
    case 'float':
      return m.float(2, a.value);
    case 'int':
      return m.int(3, a.value);
    case 'string':
      return m.string(4, a.value);
    case 'floats':
      for (const v of a.value) m.float(7, v);
      return m;
    case 'ints':
      for (const v of a.value) m.int(8, v);
      return m;
  }
}

function node(n: OnnxNode): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.opType);
  for (const a of n.attributes) m.message(5, attribute(a));
  return m;
}

/** Little-endian bytes of the tensor's data (TensorProto.raw_data). */
function rawData(data: Float32Array | BigInt64Array): Uint8Array {
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  if (data instanceof Float32Array) for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
  else for (let i = 0; i < data.length; i++) view.setBigInt64(8 * i, data[i]!, true);
  return out;
}

function tensor(t: OnnxTensor): ProtoMessage {
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (size !== t.data.length) throw new Error(`onnx: tensor '${t.name}' has dims [${t.dims}] but ${t.data.length} values`);
  const m = new ProtoMessage();
  for (const d of t.dims) m.int(1, d);
  return m
    .int(2, t.data instanceof Float32Array ? FLOAT : INT64)
    .string(8, t.name)
    .bytes(9, rawData(t.data));
}

function valueInfo(v: OnnxValueInfo): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new ProtoMessage().int(1, d) : new ProtoMessage().string(2, d));
  const tensorType = new ProtoMessage().int(1, FLOAT).message(2, shape);
  return new ProtoMessage().string(1, v.name).message(2, new ProtoMessage().message(1, tensorType));
}

/** The bytes of an ONNX ModelProto (one graph, the default `ai.onnx` domain). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const graph = new ProtoMessage();
  for (const n of model.nodes) graph.message(1, node(n));
  graph.string(2, model.graphName);
  for (const t of model.initializers) graph.message(5, tensor(t));
  for (const v of model.inputs) graph.message(11, valueInfo(v));
  for (const v of model.outputs) graph.message(12, valueInfo(v));

  const m = new ProtoMessage()
    .int(1, model.irVersion)
    .string(2, model.producerName)
    .string(6, model.docString)
    .message(7, graph)
    .message(8, new ProtoMessage().string(1, '').int(2, model.opsetVersion));
  for (const [key, value] of Object.entries(model.metadata)) m.message(14, new ProtoMessage().string(1, key).string(2, value));
  return m.finish();
}
