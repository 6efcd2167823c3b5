// The `distill` app. Its command-line pieces are in @diff-instruct/cli and its image metrics in
// @diff-instruct/image-eval; this app is not a library: import from those packages instead.
export { main, HELP, VERSION } from './main.js';
