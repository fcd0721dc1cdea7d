# Makes a section-1 manual page from a binary's --help: cmake -DBINARY=... -DNAME=...
# -DSUMMARY=... -DVERSION=... -DOUTPUT=...gz -P man_page.cmake. The help text is the manual
# (phoenix --help is written as one); this only wraps it in roff and gzips it as Debian wants.
execute_process(COMMAND ${BINARY} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BINARY} --help failed: ${rc}")
endif()
string(REPLACE "\\" "\\e" help "${help}")
# A line starting with '.' or '\'' would be a roff request.
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
string(TOUPPER "${NAME}" upper)
set(head ".TH ${upper} 1 \"\" \"${NAME} ${VERSION}\" \"User Commands\"\n")
if(help MATCHES "^NAME\n")
  # Written as a manual already: its unindented lines are the section headings.
  string(REGEX REPLACE "(^|\n)([A-Z][^\n]*)" "\\1.fi\n.SH \\2\n.nf" body "${help}")
  string(REGEX REPLACE "^\\.fi\n" "" body "${body}")
  file(WRITE ${OUTPUT}.tmp "${head}${body}.fi\n")
else()
  file(WRITE ${OUTPUT}.tmp "${head}.SH NAME\n${NAME} \\- ${SUMMARY}\n.SH DESCRIPTION\n.nf\n"
    "${help}.fi\n")
endif()
execute_process(COMMAND gzip -9nc ${OUTPUT}.tmp OUTPUT_FILE ${OUTPUT} RESULT_VARIABLE rc)
file(REMOVE ${OUTPUT}.tmp)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed: ${rc}")
endif()
