package masking

// The embedded dictionaries fakes are picked from. They are part of the
// algorithm: changing, adding or reordering an entry changes outputs, so any
// edit bumps AlgorithmVersion. All entries are ASCII, so outputs fit the
// same character counts in every encoding.

var firstNames = [...]string{
	"Aaliyah", "Aaron", "Abigail", "Adam", "Adrian", "Aisha", "Alan", "Alba", "Alex", "Alice",
	"Amara", "Amelia", "Amir", "Ana", "Andrea", "Andrew", "Anna", "Arjun", "Aryan", "Ava",
	"Ben", "Bianca", "Brian", "Bruno", "Carla", "Carlos", "Caroline", "Chen", "Chloe", "Chris",
	"Clara", "Daniel", "David", "Diana", "Diego", "Dmitri", "Elena", "Eli", "Elif", "Ella",
	"Emil", "Emma", "Eric", "Eva", "Farah", "Felix", "Fiona", "Finn", "Gabriel", "Grace",
	"Hana", "Hannah", "Hassan", "Henry", "Hugo", "Ian", "Ines", "Isaac", "Isabel", "Ivan",
	"Jack", "Jade", "James", "Jana", "Javier", "Jin", "Joao", "Jonas", "Julia", "Kai",
	"Karim", "Kate", "Kenji", "Lara", "Laura", "Leo", "Liam", "Lina", "Lucas", "Lucia",
	"Luis", "Maya", "Marco", "Maria", "Mateo", "Mei", "Mia", "Milan", "Mira", "Nadia",
	"Naomi", "Nina", "Noah", "Nora", "Olga", "Oliver", "Omar", "Oscar", "Paul", "Pedro",
	"Priya", "Rafael", "Rahul", "Rania", "Rosa", "Ruth", "Sam", "Sara", "Sofia", "Sven",
	"Tara", "Theo", "Tom", "Uma", "Victor", "Vera", "Wei", "Yara", "Yusuf", "Zoe",
}

var lastNames = [...]string{
	"Abbott", "Adler", "Ahmed", "Alvarez", "Andersen", "Baker", "Barros", "Becker", "Bell", "Berg",
	"Brooks", "Bruno", "Campbell", "Carter", "Castro", "Chen", "Clarke", "Costa", "Cruz", "Dahl",
	"Dias", "Dubois", "Dunn", "Ellis", "Engel", "Evans", "Farouk", "Fischer", "Fleming", "Ford",
	"Fox", "Garcia", "Gill", "Gomez", "Grant", "Gray", "Hahn", "Hale", "Hansen", "Hayes",
	"Hill", "Holm", "Hughes", "Ito", "Jensen", "Joshi", "Kaur", "Keller", "Khan", "Kim",
	"Klein", "Kowalski", "Lang", "Larsen", "Laurent", "Lee", "Lopez", "Lund", "Marsh", "Martin",
	"Meyer", "Mills", "Moreau", "Morris", "Nakamura", "Nash", "Neumann", "Nguyen", "Novak", "Nunez",
	"Olsen", "Ortiz", "Owens", "Park", "Patel", "Perez", "Petrov", "Price", "Quinn", "Ramos",
	"Reed", "Reyes", "Rossi", "Ruiz", "Sato", "Schulz", "Shah", "Silva", "Singh", "Stone",
	"Suzuki", "Tanaka", "Torres", "Turner", "Vargas", "Vogel", "Wagner", "Walsh", "Weber", "Wolf",
	"Wong", "Wright", "Yamada", "Young", "Zhang", "Ziegler",
}

var streetNames = [...]string{
	"Acacia", "Alder", "Ash", "Aspen", "Bay", "Beech", "Birch", "Bridge", "Brook", "Canal",
	"Cedar", "Chapel", "Cherry", "Church", "Cliff", "Clover", "Dale", "Elm", "Fern", "Field",
	"Forest", "Garden", "Glen", "Grove", "Harbor", "Hazel", "Heather", "Hill", "Holly", "Ivy",
	"Juniper", "Lake", "Laurel", "Linden", "Maple", "Meadow", "Mill", "Oak", "Orchard", "Park",
	"Pine", "Poplar", "Quarry", "Ridge", "River", "Rose", "Sage", "School", "Spring", "Station",
	"Summit", "Sunset", "Valley", "Walnut", "Willow", "Windmill",
}

var streetSuffixes = [...]string{"Street", "Road", "Avenue", "Lane", "Way", "Drive", "Close", "Court", "Place", "Terrace"}

var cities = [...]string{
	"Ashford", "Bellmont", "Briarwood", "Brookhaven", "Cedar Falls", "Clearwater", "Crestview", "Dunmore", "Eastwick", "Elmstead",
	"Fairview", "Glenrock", "Greenfield", "Harborview", "Hillcrest", "Kingsbridge", "Lakeside", "Linwood", "Maplewood", "Marlow",
	"Millbrook", "Northgate", "Oakridge", "Pinehurst", "Ridgefield", "Riverton", "Rosedale", "Seabrook", "Silverton", "Springdale",
	"Stonebridge", "Summerville", "Thornbury", "Westbrook", "Whitmore", "Willowdale", "Winchester", "Woodhaven",
}

// fakeEmailDomains are reserved for documentation (RFC 2606): mail to them
// never reaches anyone.
var fakeEmailDomains = [...]string{"example.com", "example.net", "example.org"}
