/**
 * Model configurations: plain JSON data. A config is stored in every weight file, so a file
 * describes itself and `loadDenoiser(path)` / `loadGenerator(path)` need nothing else.
 */

/** An MLP score network F(x_in, c_noise, label) on flat vectors of length `dim`. */
export interface MlpScoreConfig {
  kind: 'mlp';
  /** Data dimension. */
  dim: number;
  /** Hidden widths, e.g. [256, 256, 256] (the reference MLP of DESIGN.md). */
  hidden: number[];
  /** Width of the noise (and class) embedding, even, e.g. 64. */
  embedDim: number;
  /** Number of classes; 0 = unconditional. */
  numClasses: number;
}

/** A network wrapped into a denoiser by EDM preconditioning. */
export interface EdmDenoiserConfig {
  kind: 'edm';
  /** σ_data, the standard deviation of the data (EDM: 0.5 for images in [-1, 1]). */
  sigmaData: number;
  net: MlpScoreConfig;
}

/** An MLP generator z ↦ x. */
export interface MlpGeneratorConfig {
  kind: 'mlp-generator';
  latentDim: number;
  outDim: number;
  hidden: number[];
  numClasses: number;
}

/** Eq. (B.3): the generator x = D(σ*·z; σ*), a denoiser evaluated at one fixed noise level. */
export interface TweedieGeneratorConfig {
  kind: 'tweedie';
  sigmaStar: number;
  denoiser: EdmDenoiserConfig;
}

export type DenoiserConfig = EdmDenoiserConfig;
export type GeneratorConfig = MlpGeneratorConfig | TweedieGeneratorConfig;
export type ModelConfig = DenoiserConfig | GeneratorConfig;

/** 'denoiser' or 'generator', the role stored in weight files. */
export function roleOf(config: ModelConfig): 'denoiser' | 'generator' {
  return config.kind === 'edm' ? 'denoiser' : 'generator';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function check(cond: boolean, where: string, msg: string): void {
  if (!cond) throw new Error(`invalid ${where}: ${msg}`);
}

function posInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function checkWidths(v: unknown, where: string): void {
  check(Array.isArray(v) && v.length > 0 && v.every(posInt), where, `hidden must be a non-empty list of positive integers, got ${JSON.stringify(v)}`);
}

function checkClasses(v: unknown, where: string): void {
  check(typeof v === 'number' && Number.isInteger(v) && v >= 0, where, `numClasses must be an integer >= 0, got ${JSON.stringify(v)}`);
}

/** Throws a message naming the field when `config` is not a valid {@link DenoiserConfig}. */
export function validateDenoiserConfig(config: unknown, where = 'denoiser config'): asserts config is DenoiserConfig {
  check(isObject(config), where, 'expected an object');
  const c = config as Record<string, unknown>;
  check(c.kind === 'edm', where, `unknown denoiser kind ${JSON.stringify(c.kind)} (expected 'edm')`);
  check(typeof c.sigmaData === 'number' && c.sigmaData > 0, where, `sigmaData must be > 0, got ${JSON.stringify(c.sigmaData)}`);
  const net = c.net;
  check(isObject(net), where, 'net must be an object');
  const n = net as Record<string, unknown>;
  check(n.kind === 'mlp', where, `unknown network kind ${JSON.stringify(n.kind)} (expected 'mlp')`);
  check(posInt(n.dim), where, `net.dim must be a positive integer, got ${JSON.stringify(n.dim)}`);
  checkWidths(n.hidden, `${where} (net)`);
  check(posInt(n.embedDim) && (n.embedDim as number) % 2 === 0, where, `net.embedDim must be a positive even integer, got ${JSON.stringify(n.embedDim)}`);
  checkClasses(n.numClasses, `${where} (net)`);
}

/** Throws a message naming the field when `config` is not a valid {@link GeneratorConfig}. */
export function validateGeneratorConfig(config: unknown, where = 'generator config'): asserts config is GeneratorConfig {
  check(isObject(config), where, 'expected an object');
  const c = config as Record<string, unknown>;
  if (c.kind === 'mlp-generator') {
    check(posInt(c.latentDim), where, `latentDim must be a positive integer, got ${JSON.stringify(c.latentDim)}`);
    check(posInt(c.outDim), where, `outDim must be a positive integer, got ${JSON.stringify(c.outDim)}`);
    checkWidths(c.hidden, where);
    checkClasses(c.numClasses, where);
  } else if (c.kind === 'tweedie') {
    check(typeof c.sigmaStar === 'number' && c.sigmaStar > 0, where, `sigmaStar must be > 0, got ${JSON.stringify(c.sigmaStar)}`);
    validateDenoiserConfig(c.denoiser, `${where} (denoiser)`);
  } else {
    check(false, where, `unknown generator kind ${JSON.stringify(c.kind)} (expected 'mlp-generator' or 'tweedie')`);
  }
}
