# install.cmake - `cmake --install`: public headers, static and shared libraries, the CMake package
# (find_package(skyloft) -> skyloft::skyloft, skyloft::skyloft_static, with a version file), skyloft.pc, and
# CPack's .deb (cpack -G DEB). scripts/check-install.sh builds a program against the installed result.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# In the build tree the targets use the source headers; installed, the installed ones.
foreach(t skyloft skyloft_shared)
  set_target_properties(${t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
    "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>;$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
endforeach()
set_target_properties(skyloft PROPERTIES EXPORT_NAME skyloft_static)
set_target_properties(skyloft_shared PROPERTIES EXPORT_NAME skyloft
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
# Consumers must compile the public headers as C++20.
target_compile_features(skyloft INTERFACE cxx_std_20)
target_compile_features(skyloft_shared INTERFACE cxx_std_20)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/skyloft DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")
install(TARGETS skyloft skyloft_shared EXPORT skyloftTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(SKYLOFT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/skyloft)
install(EXPORT skyloftTargets NAMESPACE skyloft:: DESTINATION ${SKYLOFT_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/skyloftConfig.cmake.in
  ${PROJECT_BINARY_DIR}/skyloftConfig.cmake INSTALL_DESTINATION ${SKYLOFT_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/skyloftConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/skyloftConfig.cmake ${PROJECT_BINARY_DIR}/skyloftConfigVersion.cmake
        DESTINATION ${SKYLOFT_CMAKE_DIR})

# skyloft.pc finds the prefix from its own location, so the same file serves any --prefix or DESTDIR.
file(RELATIVE_PATH SKYLOFT_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/skyloft.pc.in ${PROJECT_BINARY_DIR}/skyloft.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/skyloft.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# cpack -G DEB (from the build directory): one package with the headers, both libraries and the metadata.
set(CPACK_PACKAGE_NAME skyloft)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "User-space scheduling framework: tasks on pinned worker threads (C++20)")
set(CPACK_PACKAGE_CONTACT "skyloft maintainers")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libfmt-dev")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
include(CPack)
