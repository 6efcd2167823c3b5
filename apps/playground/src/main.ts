// The playground page: work in progress (issue 18).
export {};
