# Reference values for the Hodges-Lehmann estimate and its CI beside the paired Wilcoxon test, and the t CI of
# the mean gain: R's wilcox.test(baseline, followup, paired = TRUE, conf.int = TRUE) and
# t.test(baseline, followup, paired = TRUE). Writes hodges_lehmann.json (base R only, no packages).
# Run: cd tests/analyses/reference && Rscript hodges_lehmann.R
num <- function(v) if (length(v) == 0 || is.na(v)) "null" else formatC(v, digits = 17, format = "g")
vec <- function(v) paste0("[", paste(vapply(v, num, ""), collapse = ", "), "]")
one <- function(name, x, y) {
  w <- suppressWarnings(wilcox.test(x, y, paired = TRUE, conf.int = TRUE))
  t <- t.test(x, y, paired = TRUE)
  sprintf(
    '{"name": "%s", "baseline": %s, "followup": %s, "estimate": %s, "ci": %s, "conf_level": %s, "method": "%s", "mean": %s, "mean_ci": %s}',
    name, vec(x), vec(y), num(unname(w$estimate)), vec(unname(w$conf.int)), num(attr(w$conf.int, "conf.level")),
    w$method, num(unname(t$estimate)), vec(unname(t$conf.int)))
}
d <- read.csv("cohort40.csv")
v <- complete.cases(d$villalta_baseline, d$villalta_3m)
c20 <- complete.cases(d$civiq20_baseline, d$civiq20_3m)
set.seed(7)
big_x <- round(rnorm(60, 14, 4), 1); big_y <- round(big_x - rnorm(60, 5, 3), 1)
cases <- c(
  # Hollander & Wolfe (1973) p. 29, the example of ?wilcox.test: exact (n = 9, no ties, no zero)
  one("depression", c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30),
      c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29)),
  one("cohort40_villalta", d$villalta_baseline[v], d$villalta_3m[v]),       # ties and zeros: asymptotic
  one("cohort40_civiq20", d$civiq20_baseline[c20], d$civiq20_3m[c20]),
  one("small_exact", c(14, 19, 10, 16, 21, 12, 15), c(5, 9, 2, 4, 12, 3, 6.5)),
  one("n60_no_ties_rounded", big_x, big_y)
)
writeLines(c(sprintf('{"r_version": "%s", "cases": [', R.version.string), paste(cases, collapse = ",\n"), "]}"),
           "hodges_lehmann.json")
