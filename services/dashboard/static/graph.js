// Behaviour of the graph page(s); see app.js for what every page shares.
