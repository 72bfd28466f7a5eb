// The two questionnaires of contract §1. Short item labels only: no licensed item wording.
// Answers are Codings whose code is the item score ("0".."3", "1".."5"), with the SDC itemWeight extension
// carrying the same number; a QuestionnaireResponse may also answer with valueInteger. The totals are SDC
// calculatedExpressions (FHIRPath) on read-only items; fhir-pts itself recomputes them (contract §2).

RuleSet: PtsQuestionnaireMeta(id, title)
* url = "https://fhir-pts.org/fhir/Questionnaire/{id}"
* version = "1.0"
* title = "{title}"
* status = #draft
* experimental = false
* subjectType = #Patient

RuleSet: AnswerOption(code, display)
* item[=].answerOption[+].valueCoding.code = #{code}
* item[=].answerOption[=].valueCoding.display = "{display}"
* item[=].answerOption[=].extension[0].url = $itemWeight
* item[=].answerOption[=].extension[0].valueDecimal = {code}

RuleSet: VillaltaItem(linkId, text)
* item[+].linkId = "{linkId}"
* item[=].text = "{text}"
* item[=].type = #choice
* item[=].required = true
* insert AnswerOption(0, none)
* insert AnswerOption(1, mild)
* insert AnswerOption(2, moderate)
* insert AnswerOption(3, severe)

RuleSet: Civiq20Item(number, dimension)
* item[+].linkId = "q{number}"
* item[=].text = "CIVIQ-20 item {number} ({dimension})"
* item[=].code = $civiq20-dimension#{dimension}
* item[=].type = #choice
* item[=].required = true
* insert AnswerOption(1, 1)
* insert AnswerOption(2, 2)
* insert AnswerOption(3, 3)
* insert AnswerOption(4, 4)
* insert AnswerOption(5, 5)

Instance: villalta-questionnaire
InstanceOf: Questionnaire
Usage: #definition
Title: "Villalta PTS scale"
Description: "Villalta-Prandoni post-thrombotic syndrome scale of the treated leg: 5 symptoms and 6 clinical signs, each 0 none - 3 severe (total 0-33), and the venous ulcer as a separate yes/no flag never added to the total. Class: ulcer or >= 15 severe; 10-14 moderate; 5-9 mild; 0-4 none."
* id = "villalta"
* insert PtsQuestionnaireMeta(villalta, Villalta PTS scale)
* name = "Villalta"
* description = "Villalta post-thrombotic syndrome scale of the treated leg (11 items 0-3, total 0-33; ulcer flag). Short labels only."
* insert VillaltaItem(pain, Pain)
* insert VillaltaItem(cramps, Cramps)
* insert VillaltaItem(heaviness, Heaviness)
* insert VillaltaItem(paresthesia, Paresthesia)
* insert VillaltaItem(pruritus, Pruritus)
* insert VillaltaItem(pretibial-edema, Pretibial edema)
* insert VillaltaItem(skin-induration, Skin induration)
* insert VillaltaItem(hyperpigmentation, Hyperpigmentation)
* insert VillaltaItem(redness, Redness)
* insert VillaltaItem(venous-ectasia, Venous ectasia)
* insert VillaltaItem(calf-compression-pain, Pain on calf compression)
* item[+].linkId = "ulcer"
* item[=].text = "Venous ulcer"
* item[=].type = #boolean
* item[=].required = false
* item[+].linkId = "villalta-total"
* item[=].text = "Villalta total (0-33)"
* item[=].code = $pts#villalta-total
* item[=].type = #integer
* item[=].readOnly = true
* item[=].extension[0].url = $calculatedExpression
* item[=].extension[0].valueExpression.description = "Sum of the 11 item scores; empty unless all 11 are answered. The ulcer is not added."
* item[=].extension[0].valueExpression.language = #text/fhirpath
* item[=].extension[0].valueExpression.expression = "iif(%resource.repeat(item).where((linkId in ('pain' | 'cramps' | 'heaviness' | 'paresthesia' | 'pruritus' | 'pretibial-edema' | 'skin-induration' | 'hyperpigmentation' | 'redness' | 'venous-ectasia' | 'calf-compression-pain')) and answer.exists()).count() = 11, %resource.repeat(item).where(linkId in ('pain' | 'cramps' | 'heaviness' | 'paresthesia' | 'pruritus' | 'pretibial-edema' | 'skin-induration' | 'hyperpigmentation' | 'redness' | 'venous-ectasia' | 'calf-compression-pain')).answer.value.select(iif(code.exists(), code.toInteger(), $this.toInteger())).sum(), {})"

Instance: civiq-20-questionnaire
InstanceOf: Questionnaire
Usage: #definition
Title: "CIVIQ-20"
Description: "ChronIc Venous Insufficiency quality of life Questionnaire, 20 items, each 1 (no problem) - 5; raw total 20-100, GIS = (raw - 20) / 80 x 100. Each item's code is its dimension (pain q1-q4; physical q5 q6 q7 q9; social q8 q10 q11; psychological q12-q20). Short labels only: the item wording is not reproduced."
* id = "civiq-20"
* insert PtsQuestionnaireMeta(civiq-20, CIVIQ-20)
* name = "CIVIQ20"
* description = "CIVIQ-20 quality of life questionnaire (20 items 1-5, raw total 20-100), items tagged with their dimension. Short labels only."
* insert Civiq20Item(1, pain)
* insert Civiq20Item(2, pain)
* insert Civiq20Item(3, pain)
* insert Civiq20Item(4, pain)
* insert Civiq20Item(5, physical)
* insert Civiq20Item(6, physical)
* insert Civiq20Item(7, physical)
* insert Civiq20Item(8, social)
* insert Civiq20Item(9, physical)
* insert Civiq20Item(10, social)
* insert Civiq20Item(11, social)
* insert Civiq20Item(12, psychological)
* insert Civiq20Item(13, psychological)
* insert Civiq20Item(14, psychological)
* insert Civiq20Item(15, psychological)
* insert Civiq20Item(16, psychological)
* insert Civiq20Item(17, psychological)
* insert Civiq20Item(18, psychological)
* insert Civiq20Item(19, psychological)
* insert Civiq20Item(20, psychological)
* item[+].linkId = "civiq20-total"
* item[=].text = "CIVIQ-20 raw total (20-100)"
* item[=].code = $pts#civiq20-total
* item[=].type = #integer
* item[=].readOnly = true
* item[=].extension[0].url = $calculatedExpression
* item[=].extension[0].valueExpression.description = "Sum of the 20 item scores; empty unless all 20 are answered (fhir-pts imputes 1-2 missing items within their dimension, contract §2)."
* item[=].extension[0].valueExpression.language = #text/fhirpath
* item[=].extension[0].valueExpression.expression = "iif(%resource.repeat(item).where((linkId in ('q1' | 'q2' | 'q3' | 'q4' | 'q5' | 'q6' | 'q7' | 'q8' | 'q9' | 'q10' | 'q11' | 'q12' | 'q13' | 'q14' | 'q15' | 'q16' | 'q17' | 'q18' | 'q19' | 'q20')) and answer.exists()).count() = 20, %resource.repeat(item).where(linkId in ('q1' | 'q2' | 'q3' | 'q4' | 'q5' | 'q6' | 'q7' | 'q8' | 'q9' | 'q10' | 'q11' | 'q12' | 'q13' | 'q14' | 'q15' | 'q16' | 'q17' | 'q18' | 'q19' | 'q20')).answer.value.select(iif(code.exists(), code.toInteger(), $this.toInteger())).sum(), {})"

Instance: local-codes-template
InstanceOf: ConceptMap
Usage: #definition
Title: "Local codes to fhir-pts codes (template)"
Description: "The file to copy for `fhir-pts run --concept-map FILE`: one group per local code system, one element per local code, each mapped to a contract code. Every equivalence except unmatched and disjoint maps. Replace the example source system and codes with your hospital's."
* url = "https://fhir-pts.org/fhir/ConceptMap/local-codes-template"
* version = "0.1.0"
* name = "LocalCodesTemplate"
* title = "Local codes to fhir-pts codes (template)"
* status = #draft
* experimental = true
* group[0].source = "http://hospital.example.org/fhir/CodeSystem/procedures"
* group[0].target = "https://fhir-pts.org/fhir/CodeSystem/pts"
* group[0].element[0].code = #VSTENT
* group[0].element[0].display = "Iliofemoral venous stent (local)"
* group[0].element[0].target[0].code = #venous-stenting
* group[0].element[0].target[0].display = "Venous stenting"
* group[0].element[0].target[0].equivalence = #equivalent
* group[0].element[1].code = #VREDO
* group[0].element[1].display = "Venous stent re-intervention (local)"
* group[0].element[1].target[0].code = #reintervention
* group[0].element[1].target[0].display = "Reintervention"
* group[0].element[1].target[0].equivalence = #wider
* group[1].source = "http://hospital.example.org/fhir/CodeSystem/imaging-results"
* group[1].target = "https://fhir-pts.org/fhir/CodeSystem/pts"
* group[1].element[0].code = #STENT-OCCL
* group[1].element[0].display = "Stent occluded on duplex (local)"
* group[1].element[0].target[0].code = #occluded
* group[1].element[0].target[0].equivalence = #equivalent
* group[1].element[1].code = #STENT-NA
* group[1].element[1].display = "Stent not assessable (local)"
* group[1].element[1].target[0].equivalence = #unmatched
