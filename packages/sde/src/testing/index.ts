export { gradCheck, tol, type GradCheckOptions, type GradCheckResult } from './gradcheck.js';
