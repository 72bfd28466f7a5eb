// Sufficient statistics a site shares so that a coordinating centre pools exactly without patient-level data
// (fhir-pts pool; docs/pooling.md). Written by every run into measure-reports.json, suppressed by --min-cell-count.

Extension: Aggregate
Id: aggregate
Title: "Aggregate (sufficient statistic)"
Description: "One sufficient statistic of an analysis on MeasureReport.group, from which fhir-pts pool recomputes the figures of the union of several sites exactly: a count, a proportion (numerator, denominator), moments (n, sum, sum of squares, min, max), a Kaplan-Meier table (distinct times with events and censorings), a value distribution (only when the site opts in), per-site Wilcoxon signed-rank summaries (V, non-zero pairs, tie correction) or a linear model's n, X'X, X'y and y'y. A field suppressed for small cells (fewer patients than the minimum cell count) is left out and named in masked."
Context: MeasureReport.group
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* extension contains
    name 1..1 and
    kind 1..1 and
    unit 0..1 and
    yields 0..* and
    count 0..1 and
    n 0..1 and
    numerator 0..1 and
    denominator 0..1 and
    sum 0..1 and
    sumOfSquares 0..1 and
    min 0..1 and
    max 0..1 and
    patients 0..1 and
    excluded 0..1 and
    reverse 0..1 and
    coarsened 0..1 and
    row 0..* and
    valuesShared 0..1 and
    value 0..* and
    stratum 0..* and
    formula 0..1 and
    term 0..* and
    xtx 0..* and
    xty 0..* and
    yty 0..1 and
    sumY 0..1 and
    masked 0..*
* extension[name] ^short = "Aggregate name within its measure (age, kaplan-meier, model, female ...)"
* extension[name].value[x] only string
* extension[kind] ^short = "count | proportion | moments | km-table | distribution | signed-rank | cross-products"
* extension[kind].value[x] only code
* extension[unit] ^short = "UCUM unit of the values (a, mo, {score})"
* extension[unit].value[x] only code
* extension[yields] ^short = "role=statistic: the results.csv statistic a role gives (mean=age_mean, median=median_months)"
* extension[yields].value[x] only string
* extension[count] ^short = "A count of patients"
* extension[count].value[x] only integer
* extension[n] ^short = "Number of patients (sample size)"
* extension[n].value[x] only integer
* extension[numerator] ^short = "Numerator of a proportion (patients)"
* extension[numerator].value[x] only integer
* extension[denominator] ^short = "Denominator of a proportion (patients)"
* extension[denominator].value[x] only integer
* extension[sum] ^short = "Sum of the values"
* extension[sum].value[x] only decimal
* extension[sumOfSquares] ^short = "Sum of the squared values"
* extension[sumOfSquares].value[x] only decimal
* extension[min] ^short = "Smallest value (one patient's: not shared when small cells are suppressed)"
* extension[min].value[x] only decimal
* extension[max] ^short = "Largest value (one patient's: not shared when small cells are suppressed)"
* extension[max].value[x] only decimal
* extension[patients] ^short = "Patients of the measure (KM table)"
* extension[patients].value[x] only integer
* extension[excluded] ^short = "Patients without a usable time (KM table)"
* extension[excluded].value[x] only integer
* extension[reverse] ^short = "The table serves the reverse Kaplan-Meier (median follow-up)"
* extension[reverse].value[x] only boolean
* extension[coarsened] ^short = "Rows were merged into bins for small-cell suppression: the table is approximate"
* extension[coarsened].value[x] only boolean
* extension[row] ^short = "One distinct time of a KM table"
* extension[row].extension contains
    time 1..1 and
    events 1..1 and
    censored 1..1
* extension[row].extension[time] ^short = "Time in months from the index procedure (days / 30.4375)"
* extension[row].extension[time].value[x] only decimal
* extension[row].extension[events] ^short = "Events (loss of patency) at that time"
* extension[row].extension[events].value[x] only integer
* extension[row].extension[censored] ^short = "Censorings at that time"
* extension[row].extension[censored].value[x] only integer
* extension[valuesShared] ^short = "Whether the values of the distribution are shared (--share-distributions)"
* extension[valuesShared].value[x] only boolean
* extension[value] ^short = "One value of a distribution, ascending"
* extension[value].value[x] only decimal
* extension[stratum] ^short = "One site's Wilcoxon signed-rank summary"
* extension[stratum].extension contains
    pairs 0..1 and
    nonzero 0..1 and
    v 0..1 and
    tieCorrection 0..1 and
    masked 0..1
* extension[stratum].extension[pairs] ^short = "Complete pairs"
* extension[stratum].extension[pairs].value[x] only integer
* extension[stratum].extension[nonzero] ^short = "Non-zero differences"
* extension[stratum].extension[nonzero].value[x] only integer
* extension[stratum].extension[v] ^short = "V: sum of the ranks of the positive differences (average ranks for ties)"
* extension[stratum].extension[v].value[x] only decimal
* extension[stratum].extension[tieCorrection] ^short = "Sum of t^3 - t over the groups of tied absolute differences"
* extension[stratum].extension[tieCorrection].value[x] only decimal
* extension[stratum].extension[masked] ^short = "The stratum was suppressed (too few pairs)"
* extension[stratum].extension[masked].value[x] only boolean
* extension[formula] ^short = "The linear model, R style"
* extension[formula].value[x] only string
* extension[term] ^short = "A design column, in model order (intercept first)"
* extension[term].value[x] only string
* extension[xtx] ^short = "X'X, row-major"
* extension[xtx].value[x] only decimal
* extension[xty] ^short = "X'y"
* extension[xty].value[x] only decimal
* extension[yty] ^short = "y'y"
* extension[yty].value[x] only decimal
* extension[sumY] ^short = "Sum of y"
* extension[sumY].value[x] only decimal
* extension[masked] ^short = "A field left out for small-cell suppression"
* extension[masked].value[x] only string

Extension: PoolingContext
Id: pooling-context
Title: "Pooling context"
Description: "What sites must agree on to be pooled (the analysis' parameters and the assessment windows, as canonical JSON), the fhir-pts version that computed the report, the minimum cell count applied to its aggregates and whether value distributions were shared."
Context: MeasureReport
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* extension contains
    parameters 1..1 and
    windows 1..1 and
    softwareVersion 0..1 and
    minCellCount 0..1 and
    distributionsShared 0..1
* extension[parameters] ^short = "The analysis' parameters as run, canonical JSON (sorted keys)"
* extension[parameters].value[x] only string
* extension[windows] ^short = "The assessment windows in days, canonical JSON"
* extension[windows].value[x] only string
* extension[softwareVersion] ^short = "fhir-pts version"
* extension[softwareVersion].value[x] only string
* extension[minCellCount] ^short = "Minimum cell count applied to the aggregates (0 or 1: none)"
* extension[minCellCount].value[x] only integer
* extension[distributionsShared] ^short = "Whether value distributions were shared"
* extension[distributionsShared].value[x] only boolean
