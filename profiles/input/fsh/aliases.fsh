// Code systems and extension URLs used across the FSH sources.
Alias: $pts = https://fhir-pts.org/fhir/CodeSystem/pts
Alias: $villalta-class = https://fhir-pts.org/fhir/CodeSystem/villalta-class
Alias: $civiq20-dimension = https://fhir-pts.org/fhir/CodeSystem/civiq20-dimension
Alias: $cpt = http://www.ama-assn.org/go/cpt
Alias: $icd10pcs = http://www.cms.gov/Medicare/Coding/ICD10
Alias: $sct = http://snomed.info/sct
Alias: $ucum = http://unitsofmeasure.org
Alias: $measure-population = http://terminology.hl7.org/CodeSystem/measure-population
Alias: $measure-scoring = http://terminology.hl7.org/CodeSystem/measure-scoring
Alias: $measure-improvement-notation = http://terminology.hl7.org/CodeSystem/measure-improvement-notation
Alias: $measure-type = http://terminology.hl7.org/CodeSystem/measure-type
Alias: $itemWeight = http://hl7.org/fhir/StructureDefinition/itemWeight
Alias: $calculatedExpression = http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression
