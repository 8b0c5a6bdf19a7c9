# Warning set from STYLE.md section 10; -Werror is on unless SP_WERROR=OFF.
set(SP_WARNINGS
  -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wvla -Wcast-qual -Wwrite-strings -Wpointer-arith -Wundef
  -Wnull-dereference -Wimplicit-fallthrough -Wduplicated-cond -Wlogical-op)
if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
  list(REMOVE_ITEM SP_WARNINGS -Wduplicated-cond -Wlogical-op)
  # Tables end with { NULL } sentinels; gcc accepts that under -Wextra.
  list(APPEND SP_WARNINGS -Wno-missing-field-initializers)
endif()
if(SP_WERROR)
  list(APPEND SP_WARNINGS -Werror)
endif()
add_compile_options(${SP_WARNINGS})
