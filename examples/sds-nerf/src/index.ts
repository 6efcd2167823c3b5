export { main, VERSION } from './main.js';
export { NERF_DEFAULTS, NERF_FLAGS, NERF_HELP, resolveNerfConfig, runNerf, type NerfConfig, type NerfReport } from './run.js';
export {
  cameraPosition,
  cameraRays,
  composite,
  fieldGrid,
  interpolate,
  psnr,
  render,
  trilinear,
  viewBatch,
  DENSITY_SCALE,
  type Camera,
  type Grid,
  type Interpolation,
  type Rays,
  type RenderOptions,
  type ViewBatch,
  type VoxelField,
} from './render.js';
export { SCENE, azimuthBin, cameraAt, initField, randomCameras, sceneGrid, turntable, type ViewSettings } from './scene.js';
