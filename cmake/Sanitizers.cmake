# SP_SANITIZE=address,undefined builds everything with ASan and UBSan.
if(SP_SANITIZE)
  add_compile_options(-fsanitize=${SP_SANITIZE} -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${SP_SANITIZE})
else()
  # Hardening (STYLE.md section 10); FORTIFY needs optimisation.
  add_compile_options(-fstack-protector-strong)
  if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
    add_compile_definitions(_FORTIFY_SOURCE=2)
  endif()
endif()
add_link_options(-Wl,-z,relro,-z,now)
