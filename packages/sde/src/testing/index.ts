export { gradCheck, tol, type GradCheckOptions, type GradCheckResult } from './gradcheck.js';
export { errorMessageOf, relativeMaxDiff } from './compare.js';
