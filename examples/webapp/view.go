package main

import "html/template"

// templateFuncs are the functions every page's template may call.
var templateFuncs = template.FuncMap{}
