# The one library a user links, and everything `cmake --install` puts down.
#
#   kiln::kiln         libkiln.so: every component's objects (ir, plan,
#                      passes, codegen, runtime, device, frontend) in one
#                      shared library. LLVM 19, OpenBLAS, zlib, Threads and dl
#                      are linked PRIVATE, so a user links nothing else; only
#                      fmt is a usage requirement (ir/error.h formats with it).
#   kiln::kiln_static  libkiln.a: the same objects (all PIC), for a Python
#                      extension or a fully static program; its dependencies
#                      are found by kilnConfig.cmake when the user asks for
#                      `find_package(kiln CONFIG REQUIRED COMPONENTS static)`.
#
# The components stay separate static libraries inside the build (the tests
# link them one by one); the combined libraries reuse their object files, so
# nothing is compiled twice. The CUDA pieces are part of both libraries but
# load libcuda, NVRTC and cuBLAS with dlopen at run time: nothing from the
# CUDA toolkit is a link dependency, so CPU-only users need no toolkit.
#
# Installed layout (prefix P):
#   P/include/kiln/kiln.h                umbrella header
#   P/include/kiln/{ir,passes,plan,runtime,frontend}/*.h, *.def
#   P/lib/libkiln.so*, P/lib/libkiln.a
#   P/lib/cmake/kiln/kilnConfig.cmake, kilnConfigVersion.cmake, targets
#   P/lib/pkgconfig/kiln.pc
#   P/bin/kiln                           the command (top-level builds)
# The include directories are P/include/kiln (so the headers' own
# "ir/graph.h"-style includes resolve) and P/include (for <kiln/kiln.h>).

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

option(KILN_BUILD_SHARED "Build libkiln.so (kiln::kiln)" ON)
option(KILN_BUILD_STATIC "Build libkiln.a (kiln::kiln_static)" ON)
if(NOT KILN_BUILD_SHARED AND NOT KILN_BUILD_STATIC)
  message(FATAL_ERROR "kiln: KILN_BUILD_SHARED and KILN_BUILD_STATIC are both OFF")
endif()

# The components' objects and their external link dependencies (everything
# they link that is not another component or the warnings flags).
get_property(_kiln_components GLOBAL PROPERTY KILN_COMPONENTS)
set(_kiln_objects)
set(_kiln_external)
foreach(_c IN LISTS _kiln_components)
  list(APPEND _kiln_objects $<TARGET_OBJECTS:${_c}>)
  get_target_property(_libs ${_c} LINK_LIBRARIES)
  foreach(_l IN LISTS _libs)
    if(NOT _l IN_LIST _kiln_components AND NOT _l STREQUAL "kiln_warnings")
      list(APPEND _kiln_external ${_l})
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES _kiln_external)
list(REMOVE_ITEM _kiln_external fmt::fmt)

set(_kiln_usage_includes
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/kiln>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

# kiln_combined_library(target SHARED|STATIC export_name)
function(kiln_combined_library target kind export_name)
  add_library(${target} ${kind} ${_kiln_objects})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME kiln
    EXPORT_NAME ${export_name}
    LINKER_LANGUAGE CXX
    POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC ${_kiln_usage_includes})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC fmt::fmt PRIVATE ${_kiln_external})
endfunction()

set(_kiln_install_targets)
if(KILN_BUILD_SHARED)
  kiln_combined_library(kiln_shared SHARED kiln)
  set_target_properties(kiln_shared PROPERTIES
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
    # LLVM lives in /usr/lib/llvm-19/lib, outside the loader's default path.
    INSTALL_RPATH_USE_LINK_PATH ON)
  # A dependency missing from the list above fails here, not in the user's
  # link. (Sanitizer builds leave their runtime symbols to the executable.)
  if(NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
    target_link_options(kiln_shared PRIVATE -Wl,--no-undefined)
  endif()
  add_library(kiln::kiln ALIAS kiln_shared)
  install(TARGETS kiln_shared EXPORT kilnTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
if(KILN_BUILD_STATIC)
  if(KILN_BUILD_SHARED)
    set(_kiln_static_export kilnStaticTargets)
    set(_kiln_static_name kiln_static)
    set(KILN_STATIC_IS_DEFAULT FALSE)
  else()
    set(_kiln_static_export kilnTargets)
    set(_kiln_static_name kiln)
    set(KILN_STATIC_IS_DEFAULT TRUE)
    add_library(kiln::kiln ALIAS kiln_static)
  endif()
  kiln_combined_library(kiln_static STATIC ${_kiln_static_name})
  add_library(kiln::kiln_static ALIAS kiln_static)
  install(TARGETS kiln_static EXPORT ${_kiln_static_export}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()

if(NOT KILN_INSTALL)
  return()
endif()

# Headers: the folders a model author's includes reach (codegen/ is not
# reachable from them). runtime/cuda_driver.h and cuda_cublas.h include the
# CUDA toolkit's <cuda.h> and are internal to the CUDA backend.
foreach(_dir ir passes plan runtime frontend)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${_dir}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kiln/${_dir}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.def"
          PATTERN "cuda_driver.h" EXCLUDE PATTERN "cuda_cublas.h" EXCLUDE)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/include/kiln/kiln.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kiln)

if(TARGET kiln AND KILN_BUILD_TOOLS)
  set_target_properties(kiln PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
  install(TARGETS kiln RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# kilnConfig.cmake: find_dependency for what the exported targets name.
set(_kiln_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)
set(KILN_STATIC_FIND_DEPENDENCIES "")
foreach(_l IN LISTS _kiln_external)
  if(_l STREQUAL "ZLIB::ZLIB")
    string(APPEND KILN_STATIC_FIND_DEPENDENCIES "  find_dependency(ZLIB)\n")
  elseif(_l STREQUAL "Threads::Threads")
    string(APPEND KILN_STATIC_FIND_DEPENDENCIES "  find_dependency(Threads)\n")
  elseif(_l STREQUAL "nlohmann_json::nlohmann_json")
    string(APPEND KILN_STATIC_FIND_DEPENDENCIES "  find_dependency(nlohmann_json 3)\n")
  elseif(_l STREQUAL "BLAS::BLAS")
    string(APPEND KILN_STATIC_FIND_DEPENDENCIES
           "  set(BLA_VENDOR ${BLA_VENDOR})\n  find_dependency(BLAS)\n")
  elseif(_l STREQUAL "LLVM")
    string(APPEND KILN_STATIC_FIND_DEPENDENCIES
           "  find_dependency(LLVM ${LLVM_VERSION_MAJOR}.${LLVM_VERSION_MINOR} CONFIG)\n")
  elseif(_l MATCHES "::")
    message(WARNING "kiln: kilnConfig.cmake does not know how to find ${_l}; "
                    "add it to cmake/KilnPackage.cmake")
  endif()
endforeach()
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/kilnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kilnConfig.cmake
  INSTALL_DESTINATION ${_kiln_cmake_dir})
# 0.x: a new minor version may break the API.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kilnConfig.cmake
              ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
        DESTINATION ${_kiln_cmake_dir})
install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${_kiln_cmake_dir})
if(KILN_BUILD_STATIC AND KILN_BUILD_SHARED)
  install(EXPORT kilnStaticTargets NAMESPACE kiln:: DESTINATION ${_kiln_cmake_dir})
endif()

# kiln.pc, relocatable (${pcfiledir}): `pkg-config --cflags --libs kiln`;
# --static adds what libkiln.a needs.
file(RELATIVE_PATH KILN_PC_TO_PREFIX
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" KILN_PC_TO_PREFIX "${KILN_PC_TO_PREFIX}")
set(KILN_PC_LIBS_PRIVATE "")
if(TARGET kiln_runtime_cpu)
  string(APPEND KILN_PC_LIBS_PRIVATE " -L${LLVM_LIBRARY_DIR} -lLLVM")
  foreach(_b IN LISTS BLAS_LIBRARIES)
    string(APPEND KILN_PC_LIBS_PRIVATE " ${_b}")
  endforeach()
endif()
string(APPEND KILN_PC_LIBS_PRIVATE " -lz -lpthread")
foreach(_d IN LISTS CMAKE_DL_LIBS)
  string(APPEND KILN_PC_LIBS_PRIVATE " -l${_d}")
endforeach()
string(STRIP "${KILN_PC_LIBS_PRIVATE}" KILN_PC_LIBS_PRIVATE)
configure_file(${PROJECT_SOURCE_DIR}/cmake/kiln.pc.in
               ${PROJECT_BINARY_DIR}/kiln.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kiln.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
