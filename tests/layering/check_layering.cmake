# cmake -DBUILD_DIR=... -DTARGET=... -DEXPECT=builds|fails -P check_layering.cmake
# Builds one layering case. "fails" passes only when the compiler stopped at
# a header it could not find (the layer boundary), not on any other error.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(EXPECT STREQUAL "builds")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${TARGET}: an allowed include did not build:\n${out}")
  endif()
  message(STATUS "${TARGET}: builds, as it should")
else()
  if(status EQUAL 0)
    message(FATAL_ERROR "${TARGET}: an include across the layers built: the boundary is open")
  endif()
  if(NOT out MATCHES "No such file or directory")
    message(FATAL_ERROR "${TARGET}: failed, but not at a missing header:\n${out}")
  endif()
  string(REGEX MATCH "fatal error: [^\n]*" reason "${out}")
  message(STATUS "${TARGET}: refused as it should: ${reason}")
endif()
