{
  "variables": { "use_openblas%": "0" },
  "targets": [
    {
      "target_name": "di_native",
      "sources": ["src/kernels.cc"],
      "cflags_cc": ["-O3", "-march=native", "-funroll-loops", "-std=c++17"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["use_openblas==1", {
          "defines": ["DI_USE_OPENBLAS=1"],
          "include_dirs": ["/usr/include/x86_64-linux-gnu", "/usr/include/openblas"],
          "libraries": ["-lopenblas"]
        }, {
          "defines": ["DI_USE_OPENBLAS=0"]
        }]
      ]
    }
  ]
}
